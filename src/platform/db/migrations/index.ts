/**
 * The ordered list of schema migrations (explicit registry: a test checks every file here is listed).
 * Ids sort in application order and are recorded in `tocsin_migrations`; never edit an applied one, add
 * the next. Each `up` runs in its own transaction.
 */
import type { Kysely } from 'kysely';
import * as m0001 from './0001-scans.js';
import * as m0002 from './0002-scan-liveness.js';
import * as m0003 from './0003-scan-counts.js';
import * as m0004 from './0004-raw-responses.js';
import * as m0005 from './0005-scan-cancel.js';
import * as m0006 from './0006-constituency.js';
import * as m0007 from './0007-feeds.js';
import * as m0008 from './0008-attributions.js';
import * as m0009 from './0009-findings.js';
import * as m0011 from './0011-exposure-indexes.js';
import * as m0012 from './0012-feed-fetches.js';
import * as m0013 from './0013-campaigns.js';
import * as m0014 from './0014-attribution-watermark.js';
import * as m0015 from './0015-mail-ingest.js';
import * as m0016 from './0016-accounts.js';
import * as m0017 from './0017-incidents.js';
import * as m0018 from './0018-rescan-requests.js';
import * as m0019 from './0019-workers.js';
import * as m0020 from './0020-account-tokens.js';
import * as m0021 from './0021-schedules.js';
import * as m0022 from './0022-summary.js';
import * as m0023 from './0023-partitions.js';
import * as m0024 from './0024-feed-bulk-load.js';
import * as m0026 from './0026-findings-fold-indexes.js';
import * as m0027 from './0027-attribution-bulk.js';
import * as m0028 from './0028-verdict-sets.js';

export interface Migration {
  readonly id: string;
  up(db: Kysely<unknown>): Promise<void>;
}

export const MIGRATIONS: readonly Migration[] = [
  { id: '0001-scans', up: m0001.up },
  { id: '0002-scan-liveness', up: m0002.up },
  { id: '0003-scan-counts', up: m0003.up },
  { id: '0004-raw-responses', up: m0004.up },
  { id: '0005-scan-cancel', up: m0005.up },
  { id: '0006-constituency', up: m0006.up },
  { id: '0007-feeds', up: m0007.up },
  { id: '0008-attributions', up: m0008.up },
  { id: '0009-findings', up: m0009.up },
  { id: '0011-exposure-indexes', up: m0011.up },
  { id: '0012-feed-fetches', up: m0012.up },
  { id: '0013-campaigns', up: m0013.up },
  { id: '0014-attribution-watermark', up: m0014.up },
  { id: '0015-mail-ingest', up: m0015.up },
  { id: '0016-accounts', up: m0016.up },
  { id: '0017-incidents', up: m0017.up },
  { id: '0018-rescan-requests', up: m0018.up },
  { id: '0019-workers', up: m0019.up },
  { id: '0020-account-tokens', up: m0020.up },
  { id: '0021-schedules', up: m0021.up },
  { id: '0022-summary', up: m0022.up },
  { id: '0023-partitions', up: m0023.up },
  { id: '0024-feed-bulk-load', up: m0024.up },
  { id: '0026-findings-fold-indexes', up: m0026.up },
  { id: '0027-attribution-bulk', up: m0027.up },
  { id: '0028-verdict-sets', up: m0028.up },
];
