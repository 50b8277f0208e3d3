/**
 * The analyst dashboard's reads (issue 10 §3): the national picture aggregated in the database over the stored
 * findings (migration 0009) and attributions (0008), the host list in keyset pages, and one host's drill-down.
 * Queries only: no refresh, no fold, no write. Every figure reads what is stored, so a read never recomputes the
 * attribution (services/attribute.ts) or folds evidence: the service caches the aggregates by `dataVersion`.
 *
 * Definitions (over the CURRENT finding of each (ip, port, CVE); the patch curve's history is stats-store.ts):
 * - exposed host: an address with an open finding other than `compromised` (verdict vulnerable or indeterminate);
 *   vulnerable host: one of those with an open finding judged `vulnerable`;
 * - patched finding: closed with reason `patched` (a fixed build seen); notified finding: one with at least one
 *   `notified` event (written when a campaign's message was accepted by a relay);
 * - compromised host: an address with an open `compromised` finding (host-level evidence from a feed).
 * A finding's sector is its organisation's now (findings.org_id, kept current by the fold's owner sweep).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { COMPROMISED } from '../../findings/index.js';
import type { DbSchema, Json } from './schema.js';
import { NO_SECTOR, UNATTRIBUTED } from './stats-store.js';

type Executor = Kysely<DbSchema>;

export { NO_SECTOR, UNATTRIBUTED };

/** The counts of one line of the national picture (all, a sector, or a CVE group). */
export interface PictureCounts {
  readonly hostsExposed: number;
  readonly hostsVulnerable: number;
  readonly hostsCompromised: number;
  readonly organisationsExposed: number;
  readonly findingsOpen: number;
  readonly findingsPatched: number;
  readonly findingsNotified: number;
}

export interface PictureRows {
  readonly totals: PictureCounts;
  /** Per sector of the finding's organisation (UNATTRIBUTED, NO_SECTOR for the rest), by name. */
  readonly bySector: ReadonlyArray<PictureCounts & { readonly sector: string }>;
  /** Per CVE group asked for, in the order given (a group with no finding has zeros). */
  readonly byGroup: ReadonlyArray<PictureCounts & { readonly group: string }>;
}

interface CountRow {
  readonly hosts_exposed: number;
  readonly hosts_vulnerable: number;
  readonly hosts_compromised: number;
  readonly orgs_exposed: number;
  readonly findings_open: number;
  readonly findings_patched: number;
  readonly findings_notified: number;
}

const ZERO: PictureCounts = {
  hostsExposed: 0, hostsVulnerable: 0, hostsCompromised: 0, organisationsExposed: 0, findingsOpen: 0, findingsPatched: 0, findingsNotified: 0,
};

function countsOf(r: CountRow | undefined): PictureCounts {
  if (r === undefined) return ZERO;
  return {
    hostsExposed: r.hosts_exposed, hostsVulnerable: r.hosts_vulnerable, hostsCompromised: r.hosts_compromised, organisationsExposed: r.orgs_exposed,
    findingsOpen: r.findings_open, findingsPatched: r.findings_patched, findingsNotified: r.findings_notified,
  };
}

const COUNTS: RawBuilder<unknown> = sql`
  count(DISTINCT ip) FILTER (WHERE state = 'open' AND cve <> ${COMPROMISED})::int AS hosts_exposed,
  count(DISTINCT ip) FILTER (WHERE state = 'open' AND verdict = 'vulnerable' AND cve <> ${COMPROMISED})::int AS hosts_vulnerable,
  count(DISTINCT ip) FILTER (WHERE state = 'open' AND cve = ${COMPROMISED})::int AS hosts_compromised,
  count(DISTINCT org_id) FILTER (WHERE state = 'open' AND cve <> ${COMPROMISED})::int AS orgs_exposed,
  count(*) FILTER (WHERE state = 'open' AND cve <> ${COMPROMISED})::int AS findings_open,
  count(*) FILTER (WHERE state = 'closed' AND close_reason = 'patched')::int AS findings_patched,
  count(*) FILTER (WHERE notified)::int AS findings_notified`;

/**
 * The national picture in one REPEATABLE READ snapshot (totals, sectors and groups agree with each other even while
 * a fold runs). The current findings with their sector and notified flag go into a temporary table once; the three
 * aggregates read it (a million findings: one pass over findings, one index-only pass over the partial index of
 * `notified` events, migration 0022). Profiled at 1,000,000 findings (EXPLAIN ANALYZE; bench/web-summary.ts): the
 * pass over every finding event to find the notified ones was ~2 s of the ~12 s; a single-statement rewrite
 * (per-host hash aggregates, then DISTINCT over hosts) gave equal numbers but cost more backend CPU (6.1 s vs 4.4 s),
 * so this shape stays; the dashboard never waits for it anyway (services/dashboard.ts caches and warms it).
 */
export async function pictureRows(db: Executor, groups: ReadonlyArray<{ readonly name: string; readonly cves: readonly string[] }>): Promise<PictureRows> {
  // Distinct (group, CVE) pairs: a CVE listed twice in a group must not count its findings twice.
  const pairs = [...new Map(groups.flatMap((g) => g.cves.map((cve) => [`${g.name}\n${cve}`, { grp: g.name, gcve: cve }] as const))).values()];
  return db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
    await sql`SET LOCAL work_mem = '64MB'`.execute(trx);
    await sql`
      CREATE TEMP TABLE dash_f ON COMMIT DROP AS
      SELECT f.ip, f.cve, f.state, f.close_reason, f.verdict, f.org_id,
             CASE WHEN f.org_id IS NULL OR o.id IS NULL THEN ${UNATTRIBUTED}::text ELSE coalesce(nullif(o.sector, ''), ${NO_SECTOR}::text) END AS sector,
             (n.finding_id IS NOT NULL) AS notified
      FROM findings f
      LEFT JOIN organisations o ON o.id = f.org_id
      LEFT JOIN (SELECT DISTINCT finding_id FROM finding_events WHERE kind = 'notified') n ON n.finding_id = f.id
      WHERE f.current`.execute(trx);
    const sectors = (await sql<CountRow & { sector: string | null; grouped: number }>`
      SELECT sector, GROUPING(sector)::int AS grouped, ${COUNTS}
      FROM dash_f GROUP BY GROUPING SETS ((), (sector))`.execute(trx)).rows;
    const byGroupRows = pairs.length === 0 ? [] : (await sql<CountRow & { grp: string }>`
      SELECT g.grp, ${COUNTS}
      FROM dash_f d JOIN jsonb_to_recordset(${JSON.stringify(pairs)}::jsonb) AS g(grp text, gcve text) ON g.gcve = d.cve
      GROUP BY g.grp`.execute(trx)).rows;
    const totals = countsOf(sectors.find((r) => r.grouped === 1));
    const bySector = sectors.filter((r) => r.grouped === 0 && r.sector !== null)
      .map((r) => ({ sector: r.sector ?? NO_SECTOR, ...countsOf(r) }))
      .sort((a, b) => (a.sector < b.sector ? -1 : a.sector > b.sector ? 1 : 0));
    const byGroup = groups.map((g) => ({ group: g.name, ...countsOf(byGroupRows.find((r) => r.grp === g.name)) }));
    return { totals, bySector, byGroup };
  });
}

/**
 * A cheap fingerprint of everything the aggregates read, in one round trip of index-only lookups: the newest
 * finding and finding event (every state, verdict or owner change of a finding appends an event), the registry
 * revision and the audit of registry edits (sector changes), the attribution watermark, the newest outbox message.
 * Ids are handed out at insert time, not commit time, so a slow writer can commit below the newest id: the service
 * also bounds the age of a cached answer.
 */
export async function dataVersion(db: Executor): Promise<string> {
  const r = (await sql<{ v: string }>`
    SELECT concat_ws(':',
      (SELECT coalesce(max(id), 0) FROM findings),
      (SELECT coalesce(max(id), 0) FROM finding_events),
      (SELECT coalesce(max(rev), 0) FROM registry_revision),
      (SELECT coalesce(max(rev), 0) FROM attribution_watermark),
      (SELECT coalesce(max(id), 0) FROM constituency_audit),
      (SELECT coalesce(max(id), 0) FROM campaign_messages)) AS v`.execute(db)).rows[0];
  return r?.v ?? '';
}

// --- Hosts.

export interface HostQuery {
  /** Start after this address (keyset). */
  readonly after: string | null;
  readonly limit: number;
  readonly orgId?: number;
  /** Sector of the attributed organisation (case-insensitive); UNATTRIBUTED, NO_SECTOR as in the national picture. */
  readonly sector?: string;
  /** Hosts with a current open finding of this CVE. */
  readonly cve?: string;
  /** An address or CIDR: hosts inside it. */
  readonly within?: string;
}

export interface HostRow {
  readonly ip: string;
  readonly org_id: number | null;
  readonly org: string | null;
  readonly sector: string | null;
  readonly rule: string | null;
  readonly hostname: string | null;
  readonly product: string | null;
  readonly build: string | null;
  readonly last_seen: Date | null;
  readonly open_cves: string[] | null;
  readonly patched: number;
  readonly compromised: boolean;
}

/**
 * One page of hosts in address order. The hosts are the addresses the attribution knows (`attributions`: one row
 * per observed address, scan or feed, written by the refresh every fold and import runs first), walked on its
 * primary key, so a page costs the same at the first address as at the millionth.
 */
export async function hostRows(db: Executor, q: HostQuery): Promise<HostRow[]> {
  const conds: RawBuilder<unknown>[] = [sql`TRUE`];
  if (q.after !== null) conds.push(sql`a.ip > ${q.after}::inet`);
  if (q.orgId !== undefined) conds.push(sql`a.org_id = ${q.orgId}::bigint`);
  if (q.sector !== undefined) {
    conds.push(q.sector === UNATTRIBUTED ? sql`(a.org_id IS NULL OR o.id IS NULL)`
      : q.sector === NO_SECTOR ? sql`(o.id IS NOT NULL AND coalesce(o.sector, '') = '')`
        : sql`lower(o.sector) = lower(${q.sector})`);
  }
  if (q.cve !== undefined) {
    conds.push(sql`EXISTS (SELECT 1 FROM findings f WHERE f.current AND f.ip = a.ip AND f.state = 'open' AND upper(f.cve) = upper(${q.cve}))`);
  }
  if (q.within !== undefined) conds.push(sql`a.ip <<= ${q.within}::inet`);
  const where = sql.join(conds, sql` AND `);
  const r = await sql<HostRow>`
    WITH page AS (
      SELECT a.ip, a.org_id, o.name AS org, o.sector, a.rule
      FROM attributions a LEFT JOIN organisations o ON o.id = a.org_id
      WHERE ${where}
      ORDER BY a.ip
      LIMIT ${q.limit}
    )
    SELECT host(p.ip) AS ip, CASE WHEN p.org IS NULL THEN NULL ELSE p.org_id END AS org_id, p.org, p.sector,
           CASE WHEN p.org IS NULL THEN NULL ELSE p.rule END AS rule,
           ob.hostname, ob.product, ob.build, ob.scanned_at AS last_seen,
           fs.open_cves, coalesce(fs.patched, 0)::int AS patched, coalesce(fs.compromised, false) AS compromised
    FROM page p
    LEFT JOIN LATERAL (
      SELECT o.hostname, o.product, o.build, o.scanned_at FROM observations o WHERE o.ip = p.ip ORDER BY o.scanned_at DESC, o.id DESC LIMIT 1
    ) ob ON TRUE
    LEFT JOIN LATERAL (
      SELECT array_agg(DISTINCT f.cve ORDER BY f.cve) FILTER (WHERE f.state = 'open' AND f.cve <> ${COMPROMISED}) AS open_cves,
             count(*) FILTER (WHERE f.state = 'closed' AND f.close_reason = 'patched') AS patched,
             bool_or(f.state = 'open' AND f.cve = ${COMPROMISED}) AS compromised
      FROM findings f WHERE f.current AND f.ip = p.ip
    ) fs ON TRUE
    ORDER BY p.ip`.execute(db);
  return r.rows;
}

// --- One host.

export interface HostObservationRow {
  readonly id: number;
  readonly source: string;
  readonly scan_id: number | null;
  readonly port: number;
  readonly hostname: string | null;
  readonly tls: boolean;
  readonly status: number | null;
  readonly scanned_at: Date;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly build_precision: string | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly evidence: Json;
  readonly kb_revision: string | null;
  readonly vulnerable: string[] | null;
  readonly indeterminate: string[] | null;
  readonly notes: Json | null;
  readonly assessed_at: Date | null;
}

export interface HostFeedRow {
  readonly id: number;
  readonly feed: string;
  readonly kind: string;
  readonly report_type: string;
  readonly report_date: string;
  readonly port: number | null;
  readonly hostname: string | null;
  readonly seen_at: Date | null;
  readonly tags: string[];
  readonly reported_cves: string[];
  readonly compromised: boolean;
  readonly product: string | null;
  readonly build: string | null;
  readonly file: string | null;
  readonly line: number;
  readonly raw: string;
  readonly observation_id: number | null;
}

export interface HostFindingRow {
  readonly id: number;
  readonly port: number | null;
  readonly cve: string;
  readonly state: string;
  readonly close_reason: string | null;
  readonly verdict: string;
  readonly present: boolean;
  readonly org: string | null;
  readonly first_seen: Date;
  readonly last_seen: Date;
  readonly current: boolean;
}

export interface HostEventRow {
  readonly id: number;
  readonly finding_id: number;
  readonly kind: string;
  readonly at: Date;
  readonly who: string;
  readonly observation_id: number | null;
  readonly detail: Json | null;
}

export interface HostAttributionRow {
  readonly org_id: number | null;
  readonly org: string | null;
  readonly sector: string | null;
  readonly rule: string | null;
  readonly confidence: number;
  readonly evidence: Json | null;
  readonly tie: boolean;
  readonly candidates: Json;
  readonly attributed_at: Date;
}

export interface HostChangeRow {
  readonly from_org: string | null;
  readonly to_org: string | null;
  readonly rule: string | null;
  readonly at: Date;
}

export interface HostDetailRows {
  readonly observations: HostObservationRow[];
  readonly feedRows: HostFeedRow[];
  readonly findings: HostFindingRow[];
  readonly events: HostEventRow[];
  readonly attribution: HostAttributionRow | null;
  readonly changes: HostChangeRow[];
}

/**
 * Everything stored about one address, newest first, each list capped at `cap` rows (a host rescanned daily for
 * years must not make one answer unbounded). Index lookups only (observations and feed rows by address, findings
 * by their current key, events by finding). Only current findings are listed: a replaced incarnation (seen again
 * more than 90 days after it closed) has no index by address, and its events are in the patch curve.
 */
export async function hostDetailRows(db: Executor, ip: string, cap: number): Promise<HostDetailRows> {
  return db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
    const observations = (await sql<HostObservationRow>`
      SELECT o.id, o.source, o.scan_id, o.port, o.hostname, o.tls, o.status, o.scanned_at, o.product, o.edition, o.build,
             o.build_precision, o.cu, o.su, o.evidence, a.kb_revision, a.vulnerable, a.indeterminate, a.notes, a.assessed_at
      FROM observations o
      LEFT JOIN LATERAL (
        SELECT kb_revision, vulnerable, indeterminate, notes, assessed_at FROM assessments WHERE observation_id = o.id ORDER BY id DESC LIMIT 1
      ) a ON TRUE
      WHERE o.ip = ${ip}::inet
      ORDER BY o.scanned_at DESC, o.id DESC
      LIMIT ${cap}`.execute(trx)).rows;
    const feedRows = (await sql<HostFeedRow>`
      SELECT r.id, r.feed, r.kind, r.report_type, to_char(r.report_date, 'YYYY-MM-DD') AS report_date, r.port, r.hostname, r.seen_at,
             r.tags, r.reported_cves, r.compromised, r.product, r.build, i.file, r.line, r.raw, r.observation_id
      FROM feed_observations r LEFT JOIN feed_imports i ON i.id = r.import_id
      WHERE r.ip = ${ip}::inet
      ORDER BY r.report_date DESC, r.id DESC
      LIMIT ${cap}`.execute(trx)).rows;
    const findings = (await sql<HostFindingRow>`
      SELECT f.id, f.port, f.cve, f.state, f.close_reason, f.verdict, f.present, o.name AS org, f.first_seen, f.last_seen, f.current
      FROM findings f LEFT JOIN organisations o ON o.id = f.org_id
      WHERE f.current AND f.ip = ${ip}::inet
      ORDER BY f.cve, coalesce(f.port, -1)
      LIMIT ${cap}`.execute(trx)).rows;
    const ids = findings.map((f) => f.id);
    const events = ids.length === 0 ? [] : (await sql<HostEventRow>`
      SELECT e.id, e.finding_id, e.kind, e.at, e.who, e.observation_id, e.detail
      FROM finding_events e WHERE e.finding_id = ANY(${ids}::bigint[])
      ORDER BY e.finding_id, e.id`.execute(trx)).rows;
    const attribution = (await sql<HostAttributionRow>`
      SELECT a.org_id, o.name AS org, o.sector, a.rule, a.confidence, a.evidence, a.tie, a.candidates, a.attributed_at
      FROM attributions a LEFT JOIN organisations o ON o.id = a.org_id
      WHERE a.ip = ${ip}::inet`.execute(trx)).rows[0] ?? null;
    const changes = (await sql<HostChangeRow>`
      SELECT fo.name AS from_org, t.name AS to_org, c.rule, c.at
      FROM attribution_changes c LEFT JOIN organisations fo ON fo.id = c.from_org_id LEFT JOIN organisations t ON t.id = c.to_org_id
      WHERE c.ip = ${ip}::inet
      ORDER BY c.id DESC
      LIMIT ${cap}`.execute(trx)).rows;
    return { observations, feedRows, findings, events, attribution, changes };
  });
}

/** The organisation with this name (case-insensitive), or null. */
export async function orgIdOf(db: Executor, name: string): Promise<number | null> {
  const r = (await sql<{ id: number }>`SELECT id FROM organisations WHERE lower(name) = lower(${name}) ORDER BY id LIMIT 1`.execute(db)).rows[0];
  return r?.id ?? null;
}
