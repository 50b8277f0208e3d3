/**
 * Exposures (issue 8 §4, `tocsin exposures`, `tocsin report --by org|sector`): one record per (ip, port) merging
 * our scans and every feed, with the organisation it belongs to and why. The attribution is brought up to date
 * first (refreshAttributions: the registry or the facts may have changed since), then the store
 * (src/platform/db/exposure-store.ts, which says where each field comes from) is read in keyset pages and each
 * row is mapped here (pure).
 */
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import {
  exposureGroupCounts, exposureRows, orgByName,
  type ExposureGrouping, type ExposureQuery, type ExposureRow,
} from '../platform/db/exposure-store.js';
import type { DbSchema, Json } from '../platform/db/schema.js';
import { refreshAttributions, type RefreshSummary } from './attribute.js';
import { decideGroupReport, type GroupReport } from './exposure-report-policy.js';
import { reportSubject } from './report.js';
import { ALL_HEADLINE, headlineGroups, type ReportSubject } from './report-policy.js';

export type { GroupReport, GroupReportRow } from './exposure-report-policy.js';
export type { ExposureGrouping } from '../platform/db/exposure-store.js';

/** The JSONL record (published format: field names are a contract). */
export interface ExposureRecord {
  readonly ip: string;
  /** null: a feed row that named no port. */
  readonly port: number | null;
  /** 'scan' first, then the feeds by name, e.g. ["scan", "shadowserver"]. */
  readonly sources: readonly string[];
  /** The newest observation's host name (Host/SNI of our scan), else the newest a feed gave. */
  readonly hostname: string | null;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly buildPrecision: 'exact' | 'cu' | null;
  readonly cu: string | null;
  readonly su: string | null;
  /** Our verdicts (knowledge base) from the newest observation: CVE ids. */
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  /** What the feeds claimed (union over their rows), beside our verdicts. */
  readonly reportedCves: readonly string[];
  readonly compromised: boolean;
  readonly org: string | null;
  readonly orgId: number | null;
  readonly sector: string | null;
  readonly rule: 'manual' | 'network' | 'asn' | 'domain' | null;
  readonly attributionEvidence: Json | null;
  /** 0..1 (src/attribution CONFIDENCE); null when unattributed. */
  readonly confidence: number | null;
  readonly firstSeen: string | null;
  readonly lastSeen: string | null;
}

/** What the user asked for, as typed. */
export interface ExposureFlags {
  readonly org?: string;
  readonly cve?: string;
  readonly source?: string;
  readonly sector?: string;
  readonly unattributed?: boolean;
}

/** The flags checked and normalised (no database needed): the organisation is still a name. */
export interface ExposureFilter {
  readonly org?: string;
  readonly cve?: string;
  readonly source?: string;
  readonly sector?: string;
  readonly unattributed?: boolean;
}

const CVE_ID = /^CVE-\d{4}-\d{4,7}$/i;
/** A feed name as `tocsin feeds import --source` accepts it. */
const FEED_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

function shown(text: string): string {
  return JSON.stringify(sanitiseText(text, { max: 60 }));
}

/**
 * Checks the flags before anything is opened. --source takes scan, feed, any or one feed's name (shadowserver,
 * nmap, ...). @throws TocsinError TOCSIN_ARG_INVALID
 */
export function exposureFilter(f: ExposureFlags): ExposureFilter {
  if (f.unattributed === true && (f.org !== undefined || f.sector !== undefined)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--unattributed lists addresses with no organisation; it takes no --org or --sector');
  }
  if (f.cve !== undefined && !CVE_ID.test(f.cve.trim())) throw new TocsinError('TOCSIN_ARG_INVALID', `--cve must be a CVE id such as CVE-2021-26855, got ${shown(f.cve)}`);
  const source = f.source?.trim().toLowerCase();
  if (source !== undefined && !FEED_NAME.test(source)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--source must be scan, feed, any or a feed's name (e.g. shadowserver), got ${shown(f.source ?? '')}`);
  }
  if (f.org !== undefined && f.org.trim() === '') throw new TocsinError('TOCSIN_ARG_INVALID', '--org needs an organisation name');
  if (f.sector !== undefined && f.sector.trim() === '') throw new TocsinError('TOCSIN_ARG_INVALID', '--sector needs a sector name');
  return {
    ...(f.org === undefined ? {} : { org: f.org.trim() }),
    ...(f.cve === undefined ? {} : { cve: f.cve.trim().toUpperCase() }),
    ...(source === undefined || source === 'any' ? {} : { source }),
    ...(f.sector === undefined ? {} : { sector: f.sector.trim() }),
    ...(f.unattributed === true ? { unattributed: true } : {}),
  };
}

async function storeQuery(db: Kysely<DbSchema>, f: ExposureFilter): Promise<ExposureQuery> {
  let orgId: number | undefined;
  if (f.org !== undefined) {
    const org = await orgByName(db, f.org);
    if (org === null) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${shown(f.org)} (see tocsin org list)`);
    orgId = org.id;
  }
  return {
    ...(orgId === undefined ? {} : { orgId }),
    ...(f.cve === undefined ? {} : { cve: f.cve }),
    ...(f.source === undefined ? {} : { source: f.source }),
    ...(f.sector === undefined ? {} : { sector: f.sector }),
    ...(f.unattributed === true ? { unattributed: true } : {}),
  };
}

/** Pure: a stored row → the published record. */
export function toExposureRecord(r: ExposureRow): ExposureRecord {
  const feeds = new Set<string>([...(r.feeds ?? []), ...(r.observation_sources ?? []).filter((s) => s !== 'scan')]);
  const sources = [...((r.observation_sources ?? []).includes('scan') ? ['scan'] : []), ...[...feeds].sort()];
  return {
    ip: r.ip,
    port: r.port < 0 ? null : r.port,
    sources,
    hostname: r.hostname ?? r.feed_hostname,
    product: r.product,
    edition: r.edition,
    build: r.build,
    buildPrecision: r.build_precision,
    cu: r.cu,
    su: r.su,
    vulnerable: r.vulnerable ?? [],
    indeterminate: r.indeterminate ?? [],
    reportedCves: r.reported_cves,
    compromised: r.compromised,
    org: r.org,
    orgId: r.org_id,
    sector: r.sector,
    rule: r.org_id === null ? null : r.rule,
    attributionEvidence: r.org_id === null ? null : r.evidence,
    confidence: r.org_id === null ? null : r.confidence,
    firstSeen: r.first_seen?.toISOString() ?? null,
    lastSeen: r.last_seen?.toISOString() ?? null,
  };
}

export interface ExposureListing {
  /** What the attribution refresh did before reading. */
  readonly refresh: RefreshSummary;
  /** In (ip, port) order, read page by page as it is consumed. */
  readonly records: AsyncIterable<ExposureRecord>;
}

export interface ExposureDeps {
  /** The attribution refresh (default: services/attribute.ts). */
  readonly refresh?: (db: Kysely<DbSchema>) => Promise<RefreshSummary>;
  /** Keys per page (default: the store's). */
  readonly page?: number;
  /** Start after this key (a keyset cursor; port -1 = a feed row without a port). */
  readonly after?: { readonly ip: string; readonly port: number };
}

/**
 * Brings the attribution up to date, resolves --org (TOCSIN_ORG_NOT_FOUND for an unknown name) and returns the
 * records as a lazy stream.
 */
export async function listExposures(db: Kysely<DbSchema>, filter: ExposureFilter, deps: ExposureDeps = {}): Promise<ExposureListing> {
  const refresh = await (deps.refresh ?? ((d) => refreshAttributions(d)))(db);
  const q = await storeQuery(db, filter);
  async function* records(): AsyncGenerator<ExposureRecord> {
    for await (const r of exposureRows(db, q, deps.page, deps.after === undefined ? null : { ip: deps.after.ip, port: deps.after.port })) yield toExposureRecord(r);
  }
  return { refresh, records: records() };
}

/**
 * `tocsin report --by org|sector`: per organisation (or sector), with the unattributed addresses as their own
 * row, counted over the same records `tocsin exposures` lists. `now` is injected for tests.
 */
export async function buildGroupReport(
  db: Kysely<DbSchema>,
  by: ExposureGrouping,
  deps: ExposureDeps & { readonly subject?: ReportSubject; readonly now?: () => Date } = {},
): Promise<GroupReport & { readonly refresh: RefreshSummary }> {
  const refresh = await (deps.refresh ?? ((d) => refreshAttributions(d)))(db);
  const subject = deps.subject ?? reportSubject();
  const groups = headlineGroups(subject.groups);
  const sets = [...groups, { name: ALL_HEADLINE, cves: subject.groups.headline.map((h) => h.cve) }];
  const counts = await exposureGroupCounts(db, by, subject.id, sets);
  return { ...decideGroupReport(counts, by, subject, (deps.now ?? (() => new Date()))().toISOString()), refresh };
}
