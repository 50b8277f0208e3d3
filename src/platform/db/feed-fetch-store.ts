/**
 * What the feed collectors fetched (migration 0012): which report ids of a feed are already downloaded and
 * imported, so `tocsin feeds fetch` downloads each report once.
 */
import { sql, type Kysely } from 'kysely';
import type { DbSchema } from './schema.js';

export interface FetchRecord {
  readonly feed: string;
  readonly reportId: string;
  readonly reportType: string;
  readonly reportName: string;
  readonly reportDate: string;
  readonly file: string;
  readonly path: string;
  readonly bytes: number;
  /** Hex sha256 of the downloaded bytes. */
  readonly sha256: string;
  readonly status: 'imported' | 'duplicate-report' | 'rejected';
  readonly importId: number | null;
  readonly error: string | null;
}

/** The ids among `ids` already fetched for `feed`. */
export async function fetchedReportIds(db: Kysely<DbSchema>, feed: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom('feed_fetches').select('report_id').where('feed', '=', feed)
    .where('report_id', '=', sql<string>`ANY(${[...ids]}::text[])`).execute();
  return new Set(rows.map((r) => r.report_id));
}

/** Records a fetched report; a second record of the same id (two collectors at once) keeps the first. */
export async function recordFetch(db: Kysely<DbSchema>, r: FetchRecord): Promise<void> {
  await db.insertInto('feed_fetches').values({
    feed: r.feed, report_id: r.reportId, report_type: r.reportType, report_name: r.reportName, report_date: r.reportDate,
    file: r.file, path: r.path, bytes: r.bytes, sha256: Buffer.from(r.sha256, 'hex'), status: r.status, import_id: r.importId, error: r.error,
  }).onConflict((oc) => oc.columns(['feed', 'report_id']).doNothing()).execute();
}
