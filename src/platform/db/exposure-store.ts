/**
 * Exposures (issue 8 §4): one row per (ip, port) merging every source, read in address order with keyset pages
 * so that a million rows stream in bounded memory. Queries only: the record's shape and every decision about
 * it are in src/services/exposures.ts.
 *
 * Where each field comes from (migrations 0001, 0007, 0008):
 * - Keys: every (ip, port) with an observation of a product (scan, or a feed's Exchange row: `observations`)
 *   and every feed row (`feed_observations`; port-open and generic rows live only there, a row without a port
 *   is keyed -1 as in the feed key and shown with port null). A scanned service that never showed a product
 *   (a plain web server) is not an exposure.
 * - product, edition, build, precision, CU, SU, vulnerable, indeterminate: the NEWEST observation of the key
 *   (scan or feed), with its latest assessment (a re-assessment that replayed the detectors says what the
 *   service is: assessments.fingerprint, as in the scan store). Newest wins because the service may have been
 *   patched or replaced since; at the same time, an exact build (our scan's X-OWA-Version) beats a feed's build at
 *   cumulative-update precision, then the higher id (stored later) wins.
 * - reportedCves: the union of what every feed row claimed (e.g. Shadowserver's cve-... tags); not our verdict.
 * - compromised: some feed row said so (Shadowserver's `webshell` tag, stored as feed_observations.compromised).
 *   Our scan never claims a compromise (its notes are about builds): none of its observations set it.
 * - org, sector, rule, evidence, confidence: the stored attribution of the address (`attributions`, brought up to
 *   date by services/attribute.ts refreshAttributions before reading); no row or a null org = unattributed.
 * - firstSeen, lastSeen: over every observation and feed row of the key (a feed row without a time: its report date).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DbSchema, Json } from './schema.js';

/** Which records to read. Every field narrows; none = everything. */
export interface ExposureQuery {
  /** Only addresses attributed to this organisation (resolved id). */
  readonly orgId?: number;
  /** Only addresses attributed to an organisation of this sector (compared case-insensitively). */
  readonly sector?: string;
  /** Only addresses with no organisation. */
  readonly unattributed?: boolean;
  /** Only records where this CVE is vulnerable, indeterminate or reported by a feed. */
  readonly cve?: string;
  /** 'scan': seen by a scan; 'feed': seen by some feed; any other text: seen by the feed of that name. */
  readonly source?: string;
}

/** One record as stored, before the service's mapping. */
export interface ExposureRow {
  readonly ip: string;
  /** -1: a feed row without a port. */
  readonly port: number;
  /** 'scan' and feed names from observations.source, with repeats; may repeat the feeds below. */
  readonly observation_sources: string[] | null;
  /** Feed names from feed_observations, with repeats. */
  readonly feeds: string[] | null;
  readonly hostname: string | null;
  readonly feed_hostname: string | null;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly build_precision: 'exact' | 'cu' | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly vulnerable: string[] | null;
  readonly indeterminate: string[] | null;
  readonly reported_cves: string[];
  readonly compromised: boolean;
  readonly org_id: number | null;
  readonly org: string | null;
  readonly sector: string | null;
  readonly rule: 'manual' | 'network' | 'asn' | 'domain' | null;
  readonly confidence: number | null;
  readonly evidence: Json | null;
  readonly first_seen: Date | null;
  readonly last_seen: Date | null;
}

/** Records per page (one round trip each). Each holds up to ~90 CVE ids: a page is a few MB at most. */
export const EXPOSURE_PAGE = 2000;

/** The organisation with this name (case-insensitive), or null. */
export async function orgByName(db: Kysely<DbSchema>, name: string): Promise<{ id: number; name: string } | null> {
  const r = await db.selectFrom('organisations').select(['id', 'name']).where(sql<boolean>`lower(name) = lower(${name})`).executeTakeFirst();
  return r ?? null;
}

/** Attribution conditions on an address column, pushed into the key walk so a narrow --org reads little. */
function attributionFilter(q: ExposureQuery, ip: RawBuilder<unknown>): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [];
  if (q.orgId !== undefined) parts.push(sql`${ip} IN (SELECT ip FROM attributions WHERE org_id = ${q.orgId}::bigint)`);
  if (q.sector !== undefined) {
    parts.push(sql`${ip} IN (SELECT a.ip FROM attributions a JOIN organisations g ON g.id = a.org_id WHERE lower(g.sector) = lower(${q.sector}))`);
  }
  if (q.unattributed === true) parts.push(sql`${ip} NOT IN (SELECT ip FROM attributions WHERE org_id IS NOT NULL)`);
  return parts.length === 0 ? sql`TRUE` : sql.join(parts, sql` AND `);
}

/** Conditions on the merged record (aliases of recordsSql). */
function recordFilter(q: ExposureQuery): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [];
  if (q.cve !== undefined) {
    parts.push(sql`(${q.cve} = ANY(l.vulnerable) OR ${q.cve} = ANY(l.indeterminate) OR ${q.cve} = ANY(fr.reported))`);
  }
  if (q.source === 'scan') parts.push(sql`'scan' = ANY(os.sources)`);
  else if (q.source === 'feed') parts.push(sql`fs.feeds IS NOT NULL`);
  else if (q.source !== undefined && q.source !== 'any') parts.push(sql`${q.source} = ANY(fs.feeds)`);
  return parts.length === 0 ? sql`TRUE` : sql.join(parts, sql` AND `);
}

/** Inclusive bounds of a page's keys: lets PostgreSQL read each table's rows of the page as one index range. */
interface KeyRange {
  readonly lo: { readonly ip: string; readonly port: number };
  readonly hi: { readonly ip: string; readonly port: number };
}

/**
 * The merged record of every key in the CTE `keys` (columns ip inet, port int), with the record filter's verdict as
 * `keep`. Set-based: each table's rows of the keys are read once (with `range`, as one index range per table) and
 * grouped, instead of several lookups per key. Shared by the listing and the per-organisation report, so their
 * counts agree. Returns the CTEs to put after `keys` and the final SELECT.
 */
function recordsSql(q: ExposureQuery, range: KeyRange | null): RawBuilder<unknown> {
  const obsRange = range === null ? sql`TRUE`
    : sql`(o.ip, o.port) >= (${range.lo.ip}::inet, ${range.lo.port}::int) AND (o.ip, o.port) <= (${range.hi.ip}::inet, ${range.hi.port}::int)`;
  const feedRange = range === null ? sql`TRUE`
    : sql`(f.ip, coalesce(f.port, -1)) >= (${range.lo.ip}::inet, ${range.lo.port}::int) AND (f.ip, coalesce(f.port, -1)) <= (${range.hi.ip}::inet, ${range.hi.port}::int)`;
  return sql`
    obs AS MATERIALIZED (
      SELECT o.id, o.ip, o.port, o.source, o.hostname, o.product, o.edition, o.build, o.build_precision, o.cu, o.su, o.scanned_at
      FROM keys k JOIN observations o ON o.ip = k.ip AND o.port = k.port WHERE ${obsRange}),
    latest AS (
      -- newest first; at the same time an exact build (a scan's) before a CU-precision one (a feed's), then the later stored
      SELECT DISTINCT ON (ip, port) * FROM obs ORDER BY ip, port, scanned_at DESC, (build_precision = 'exact') DESC NULLS LAST, id DESC),
    l AS (
      SELECT o.ip, o.port, o.hostname,
             -- a re-assessment that replayed the detectors says what the service is (null: the observation's own)
             CASE WHEN a.fingerprint IS NULL THEN o.product ELSE a.fingerprint->>'product' END AS product,
             CASE WHEN a.fingerprint IS NULL THEN o.edition ELSE a.fingerprint->>'edition' END AS edition,
             CASE WHEN a.fingerprint IS NULL THEN o.build ELSE a.fingerprint->>'build' END AS build,
             CASE WHEN a.fingerprint IS NULL THEN o.build_precision ELSE a.fingerprint->>'buildPrecision' END AS build_precision,
             CASE WHEN a.fingerprint IS NULL THEN o.cu ELSE a.fingerprint->>'cu' END AS cu,
             CASE WHEN a.fingerprint IS NULL THEN o.su ELSE a.fingerprint->>'su' END AS su,
             coalesce(a.vulnerable, '{}') AS vulnerable, coalesce(a.indeterminate, '{}') AS indeterminate
      FROM latest o
      LEFT JOIN LATERAL (
        SELECT vulnerable, indeterminate, fingerprint FROM assessments WHERE observation_id = o.id ORDER BY id DESC LIMIT 1) a ON TRUE),
    os AS (
      -- not DISTINCT: a sort per key; the service merges the names into a set anyway
      SELECT ip, port, array_agg(CASE WHEN source LIKE 'feed:%' THEN substr(source, 6) ELSE source END) AS sources,
             min(scanned_at) AS first_seen, max(scanned_at) AS last_seen
      FROM obs GROUP BY ip, port),
    fo AS MATERIALIZED (
      SELECT f.ip, coalesce(f.port, -1) AS port, f.feed, f.compromised, f.hostname, f.reported_cves,
             coalesce(f.seen_at, f.report_date::timestamp AT TIME ZONE 'UTC') AS seen
      FROM keys k JOIN feed_observations f ON f.ip = k.ip AND coalesce(f.port, -1) = k.port WHERE ${feedRange}),
    fs AS (
      SELECT ip, port, array_agg(feed) AS feeds, bool_or(compromised) AS compromised,
             min(seen) AS first_seen, max(seen) AS last_seen,
             (array_agg(hostname ORDER BY seen DESC) FILTER (WHERE hostname IS NOT NULL))[1] AS hostname
      FROM fo GROUP BY ip, port),
    fr AS (
      SELECT ip, port, array_agg(DISTINCT c ORDER BY c) AS reported FROM fo CROSS JOIN unnest(fo.reported_cves) AS c GROUP BY ip, port),
    rec AS (
      SELECT k.ip AS ip_inet, host(k.ip) AS ip, k.port, os.sources AS observation_sources, fs.feeds,
             l.hostname, fs.hostname AS feed_hostname,
             l.product, l.edition, l.build, l.build_precision, l.cu, l.su, l.vulnerable, l.indeterminate,
             coalesce(fr.reported, '{}') AS reported_cves, coalesce(fs.compromised, FALSE) AS compromised,
             at.org_id, g.name AS org, g.sector, at.rule, CASE WHEN at.org_id IS NULL THEN NULL ELSE at.confidence END AS confidence,
             at.evidence,
             least(os.first_seen, fs.first_seen) AS first_seen, greatest(os.last_seen, fs.last_seen) AS last_seen,
             ${recordFilter(q)} AS keep
      FROM keys k
      LEFT JOIN l ON l.ip = k.ip AND l.port = k.port
      LEFT JOIN os ON os.ip = k.ip AND os.port = k.port
      LEFT JOIN fs ON fs.ip = k.ip AND fs.port = k.port
      LEFT JOIN fr ON fr.ip = k.ip AND fr.port = k.port
      -- LATERAL with LIMIT (not pulled up into a join): index lookups per key; a join let the planner hash the whole
      -- table for every page, which is quadratic over a million keys
      LEFT JOIN LATERAL (SELECT a.org_id, a.rule, a.confidence, a.evidence FROM attributions a WHERE a.ip = k.ip LIMIT 1) at ON TRUE
      LEFT JOIN LATERAL (SELECT o.name, o.sector FROM organisations o WHERE o.id = at.org_id LIMIT 1) g ON TRUE)`;
}

/**
 * The next `page` keys after (afterIp, afterPort) in address then port order: the first `page` of each side,
 * merged (each side is an ordered index walk that stops at `page`, so a page costs the same at the start and the
 * end of a million keys).
 */
function keyPage(q: ExposureQuery, after: { ip: string; port: number } | null, page: number): RawBuilder<unknown> {
  const obsAfter = after === null ? sql`TRUE` : sql`(ip, port) > (${after.ip}::inet, ${after.port}::int)`;
  const feedAfter = after === null ? sql`TRUE` : sql`(ip, coalesce(port, -1)) > (${after.ip}::inet, ${after.port}::int)`;
  return sql`
    SELECT ip, port FROM (
      (SELECT DISTINCT ip, port FROM observations
       WHERE product IS NOT NULL AND ${obsAfter} AND ${attributionFilter(q, sql`ip`)}
       ORDER BY ip, port LIMIT ${page})
      UNION
      (SELECT DISTINCT ip, coalesce(port, -1) AS port FROM feed_observations
       WHERE ${feedAfter} AND ${attributionFilter(q, sql`ip`)}
       ORDER BY 1, 2 LIMIT ${page})
    ) u ORDER BY ip, port LIMIT ${page}`;
}

/** Every key, for the aggregate report (no paging: PostgreSQL aggregates as it reads). */
function allKeys(q: ExposureQuery): RawBuilder<unknown> {
  return sql`
    SELECT ip, port FROM observations WHERE product IS NOT NULL AND ${attributionFilter(q, sql`ip`)}
    UNION
    SELECT ip, coalesce(port, -1) FROM feed_observations WHERE ${attributionFilter(q, sql`ip`)}`;
}

/**
 * Every record matching `q`, in (ip, port) order, `page` keys per step: one round trip reads the next keys (small:
 * an address and a port each), a second their merged records. A page whose records the filter drops whole still
 * moves the walk on, since the keys say where it is.
 */
export async function* exposureRows(
  db: Kysely<DbSchema>, q: ExposureQuery, page = EXPOSURE_PAGE, start: { ip: string; port: number } | null = null,
): AsyncGenerator<ExposureRow> {
  // `start`: resume after this key (the web API's keyset cursor; a port of -1 is a feed row without a port).
  let after: { ip: string; port: number } | null = start;
  for (;;) {
    const keys: Array<{ ip: string; port: number }> = (await sql<{ ip: string; port: number }>`
      SELECT host(ip) AS ip, port FROM (${keyPage(q, after, page)}) p ORDER BY p.ip, p.port`.execute(db)).rows;
    const lo = keys[0];
    const hi = keys[keys.length - 1];
    if (lo === undefined || hi === undefined) return;
    const rows = (await sql<ExposureRow>`
      WITH keys AS MATERIALIZED (SELECT * FROM unnest(${keys.map((k) => k.ip)}::inet[], ${keys.map((k) => k.port)}::int[]) AS k (ip, port)),
      ${recordsSql(q, { lo, hi })}
      SELECT * FROM rec WHERE keep ORDER BY ip_inet, port`.execute(db)).rows;
    yield* rows;
    if (keys.length < page) return;
    after = hi;
  }
}

/** The report's grouping: per organisation, or per sector of the attributed organisation. */
export type ExposureGrouping = 'org' | 'sector';

/** Per group: addresses, the product's servers, compromised and reported addresses. */
export interface GroupTotalsRow {
  /** False for the unattributed row. */
  readonly attributed: boolean;
  /** Organisation id (as text) or sector; null for unattributed, or an organisation without a sector. */
  readonly key: string | null;
  readonly org: string | null;
  readonly sector: string | null;
  readonly records: number;
  readonly addresses: number;
  readonly servers: number;
  readonly compromised: number;
  readonly reported: number;
}

/** Servers of a group per CVE set with one combination of (build seen, some CVE of the set vulnerable, some indeterminate). */
export interface GroupSplitRow {
  readonly attributed: boolean;
  readonly key: string | null;
  readonly set: string;
  readonly hasBuild: boolean;
  readonly vulnerable: boolean;
  readonly indeterminate: boolean;
  readonly servers: number;
}

/**
 * Counts per organisation or sector over the same records `exposureRows` lists (so the two agree): a server is a
 * distinct address with a record of `product`; a server's verdict for a set is the worst over its ports (any
 * vulnerable; else any indeterminate). Counting only; what the counts mean is decided in the service.
 */
export async function exposureGroupCounts(
  db: Kysely<DbSchema>,
  by: ExposureGrouping,
  product: string,
  sets: ReadonlyArray<{ readonly name: string; readonly cves: readonly string[] }>,
  q: ExposureQuery = {},
): Promise<{ totals: GroupTotalsRow[]; splits: GroupSplitRow[] }> {
  const key = by === 'org' ? sql`org_id::text` : sql`sector`;
  const rec = sql`
    keys AS MATERIALIZED (${allKeys(q)}),
    ${recordsSql(q, null)},
    picked AS (
      SELECT ip_inet AS ip, org_id IS NOT NULL AS attributed, CASE WHEN org_id IS NULL THEN NULL ELSE ${key} END AS key,
             org, sector, product, build, vulnerable, indeterminate, reported_cves, compromised
      FROM rec WHERE keep)`;
  const totals = (await sql<GroupTotalsRow>`
    WITH ${rec}
    SELECT attributed, key, ${by === 'org' ? sql`min(org)` : sql`NULL::text`} AS org, min(sector) AS sector,
           count(*)::int AS records, count(DISTINCT ip)::int AS addresses,
           count(DISTINCT ip) FILTER (WHERE product = ${product})::int AS servers,
           count(DISTINCT ip) FILTER (WHERE compromised)::int AS compromised,
           count(DISTINCT ip) FILTER (WHERE cardinality(reported_cves) > 0)::int AS reported
    FROM picked GROUP BY attributed, key`.execute(db)).rows;
  const setCves = sets.flatMap((x) => x.cves);
  const setNames = sets.flatMap((x) => x.cves.map(() => x.name));
  const splits = (await sql<{ attributed: boolean; key: string | null; grp: string; hb: boolean; v: boolean; i: boolean; servers: number }>`
    WITH ${rec},
    g AS (SELECT grp, array_agg(cve) AS cves FROM unnest(${setCves}::text[], ${setNames}::text[]) AS t (cve, grp) GROUP BY grp),
    per AS (
      SELECT r.attributed, r.key, r.ip, g.grp, bool_or(r.build IS NOT NULL) AS hb,
             bool_or(r.vulnerable && g.cves) AS v, bool_or(r.indeterminate && g.cves) AS i
      FROM picked r CROSS JOIN g WHERE r.product = ${product} GROUP BY r.attributed, r.key, r.ip, g.grp)
    SELECT attributed, key, grp, hb, v, i, count(*)::int AS servers FROM per GROUP BY attributed, key, grp, hb, v, i`.execute(db)).rows;
  return {
    totals,
    splits: splits.map((s) => ({ attributed: s.attributed, key: s.key, set: s.grp, hasBuild: s.hb, vulnerable: s.v, indeterminate: s.i, servers: s.servers })),
  };
}
