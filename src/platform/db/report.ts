/**
 * The stored picture as data (`tocsin report`, the demo's summary): hosts scanned and answered,
 * Exchange servers by edition and CU, exposed servers per CVE, indeterminate counts, patched share.
 *
 * Definitions (also in the README's `tocsin report` section):
 * - Scope: one scan (the latest by default, or `--scan ID`), or all scans. For all scans, each
 *   (ip, port) counts once with its LATEST attempt (hosts scanned/answered) and its LATEST observation
 *   (everything about Exchange): an unreachable host keeps the picture of its last answer, since
 *   unreachable is not fixed.
 * - "Attempts" are (ip, port) pairs; "servers" are distinct IP addresses with an on-premises Exchange
 *   observation (product "ms-exchange"). A server seen on 80 and 443 counts once; Exchange Online front
 *   ends are counted apart and never as servers.
 * - A server's verdict for a CVE is the worst over its ports: vulnerable if any observation says
 *   vulnerable, else indeterminate if any says indeterminate, else not vulnerable.
 * - Patched share = patched servers / all Exchange servers, where a server is PATCHED when a build was
 *   seen (exact or CU-level) and none of the headline CVEs is vulnerable or indeterminate for it;
 *   VULNERABLE when at least one headline CVE is vulnerable; UNDETERMINED otherwise (no build seen,
 *   or some headline CVE indeterminate and none vulnerable). The three add up to the server count.
 *   Indeterminate is never counted as patched: that would be a guess. The same split is given per
 *   headline group (ProxyLogon, ProxyShell, ProxyNotShell, and each lone headline CVE).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import type { DbSchema, ScanStatus } from './schema.js';
import { LIVENESS_COLUMNS, liveStatusOfRow, type LivenessRow } from './scan-liveness.js';
import { parseScanId } from './scan-store.js';
import { HEADLINE_CVES } from '../../scan/output.js';

/** The CVEs a CERT asks about first, in display order: one list for the report and the scan table. */
export { HEADLINE_CVES } from '../../scan/output.js';

export const PATCHED_DEFINITION =
  'patched = Exchange server (distinct IP) with a build seen and no headline CVE vulnerable or indeterminate; ' +
  'vulnerable = at least one headline CVE vulnerable; undetermined = the rest; patchedShare = patched / servers; ' +
  'headline CVEs = ProxyLogon, ProxyShell, ProxyNotShell, CVE-2023-21529, CVE-2024-21410; other CVEs do not count here ' +
  '(a host\'s `vulnerable` in `tocsin scan` and `tocsin results` output lists every CVE of the knowledge base)';

export type ReportScope = { readonly kind: 'latest' } | { readonly kind: 'scan'; readonly id: string } | { readonly kind: 'all' };

export interface ScanSummary {
  readonly id: string;
  /** As stored, except that a `running` scan whose process is gone shows `interrupted` (scan-liveness.ts). */
  readonly status: ScanStatus;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly targets: number;
  readonly ports: readonly number[];
  readonly attempts: number;
  readonly answered: number;
  readonly exchangeServers: number;
  /** Attempts stored as a timeout (any phase), after their retries. */
  readonly timedOut: number;
  /** Attempts tried more than once (congestion retries, resumes of unanswered attempts). */
  readonly retried: number;
  /** Attempts with no answer to the connect even after retries: `tocsin scan --resume ID` tries them again. */
  readonly unanswered: number;
}

export interface CveCount {
  readonly cve: string;
  readonly headline: boolean;
  readonly group: string | null;
  /** Servers for which the CVE is vulnerable. */
  readonly vulnerable: number;
  /** Servers for which it is indeterminate (and not vulnerable on any port). */
  readonly indeterminate: number;
}

export interface ExchangeReport {
  readonly scope: {
    readonly kind: ReportScope['kind'];
    /** Scans covered; for "all", every stored scan. Empty when nothing is stored. */
    readonly scanIds: readonly string[];
    /** The scan, when the scope is one scan. */
    readonly scan: ScanSummary | null;
  };
  readonly generatedAt: string;
  readonly hosts: {
    /** (ip, port) pairs attempted. */
    readonly attempted: number;
    readonly distinctIps: number;
    /** (ip, port) pairs that answered HTTP(S). */
    readonly answered: number;
    readonly byOutcome: Readonly<Record<string, number>>;
  };
  readonly exchange: {
    /** Distinct IPs with on-premises Exchange. */
    readonly servers: number;
    /** (ip, port) pairs with on-premises Exchange. */
    readonly services: number;
    /** Servers whose exact build (with security update) was seen. */
    readonly exactBuild: number;
    /** Distinct IPs that are Exchange Online / Microsoft 365 front ends (not counted as servers). */
    readonly exchangeOnline: number;
    readonly byEdition: ReadonlyArray<{ readonly edition: string; readonly servers: number }>;
    readonly byEditionCu: ReadonlyArray<{ readonly edition: string; readonly cu: string; readonly servers: number }>;
  };
  /** Headline CVEs first (always listed), then every other CVE with a count, most vulnerable first. */
  readonly cves: readonly CveCount[];
  readonly indeterminate: {
    /** Servers with at least one CVE indeterminate. */
    readonly anyCve: number;
    /** Servers with at least one headline CVE indeterminate and none vulnerable. */
    readonly headline: number;
  };
  readonly patched: {
    readonly definition: string;
    readonly servers: number;
    readonly patched: number;
    readonly vulnerable: number;
    readonly undetermined: number;
    /** patched / servers; null when there is no Exchange server. */
    readonly patchedShare: number | null;
    readonly vulnerableShare: number | null;
    /** The same split per headline group (ProxyLogon, ProxyShell, ProxyNotShell; a lone CVE is its own group). */
    readonly byGroup: readonly GroupStatus[];
  };
}

export interface GroupStatus {
  readonly group: string;
  readonly cves: readonly string[];
  readonly patched: number;
  readonly vulnerable: number;
  readonly undetermined: number;
  readonly patchedShare: number | null;
}

/** Every stored scan, newest first. */
export async function listScans(db: Kysely<DbSchema>): Promise<ScanSummary[]> {
  const r = await sql<ScanRow>`
    SELECT s.id, s.status, s.started_at, s.finished_at, jsonb_array_length(s.targets) AS targets, s.ports,
           ${LIVENESS_COLUMNS},
           a.attempts, a.answered, a.timed_out, a.retried, a.unanswered,
           (SELECT count(DISTINCT o.ip) FROM observations o WHERE o.scan_id = s.id AND o.product = 'ms-exchange') AS exchange_servers
    FROM scans s
    CROSS JOIN LATERAL (
      SELECT count(*) AS attempts, count(*) FILTER (WHERE outcome = 'answered') AS answered,
             count(*) FILTER (WHERE outcome = 'timeout') AS timed_out, count(*) FILTER (WHERE tries > 1) AS retried,
             count(*) FILTER (WHERE unanswered) AS unanswered
      FROM scan_attempts WHERE scan_id = s.id) a
    ORDER BY s.id DESC`.execute(db);
  return r.rows.map(toSummary);
}

interface ScanRow extends LivenessRow {
  readonly id: number;
  readonly started_at: Date;
  readonly finished_at: Date | null;
  readonly targets: number;
  readonly ports: number[];
  readonly attempts: number;
  readonly answered: number;
  readonly exchange_servers: number;
  readonly timed_out: number;
  readonly retried: number;
  readonly unanswered: number;
}

function toSummary(row: ScanRow): ScanSummary {
  return {
    id: String(row.id),
    status: liveStatusOfRow(row),
    startedAt: row.started_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    targets: row.targets,
    ports: row.ports,
    attempts: row.attempts,
    answered: row.answered,
    exchangeServers: row.exchange_servers,
    timedOut: row.timed_out,
    retried: row.retried,
    unanswered: row.unanswered,
  };
}

/**
 * Build the report for a scope. Throws TocsinError TOCSIN_SCAN_NOT_FOUND for an unknown `--scan` id.
 * With nothing stored, returns a report of zeros with an empty scanIds.
 */
export async function buildReport(db: Kysely<DbSchema>, scope: ReportScope = { kind: 'latest' }): Promise<ExchangeReport> {
  const scans = await resolveScope(db, scope);
  const ids = scans.ids;
  const filter = (alias: string): RawBuilder<unknown> =>
    ids === null ? sql`TRUE` : sql`${sql.ref(`${alias}.scan_id`)} = ANY(${ids}::bigint[])`;

  // Latest attempt per (ip, port) in scope.
  const att = sql`
    SELECT DISTINCT ON (a.ip, a.port) a.ip, a.port, a.outcome FROM scan_attempts a
    WHERE ${filter('a')} ORDER BY a.ip, a.port, a.attempted_at DESC, a.id DESC`;
  // Latest observation per (ip, port) in scope, then the on-premises Exchange ones.
  const obs = sql`
    SELECT DISTINCT ON (o.ip, o.port) o.id, o.ip, o.port, o.product, o.edition, o.cu, o.build, o.build_precision, o.scanned_at
    FROM observations o WHERE o.scan_id IS NOT NULL AND ${filter('o')}
    ORDER BY o.ip, o.port, o.scanned_at DESC, o.id DESC`;
  const headline = HEADLINE_CVES.map((h) => h.cve);

  const outcomes = (await sql<{ outcome: string; n: number; ips: number }>`
    WITH att AS (${att}) SELECT outcome, count(*) AS n, 0 AS ips FROM att GROUP BY outcome
    UNION ALL SELECT '*', count(*), count(DISTINCT ip) FROM att`.execute(db)).rows;
  const total = outcomes.find((o) => o.outcome === '*');
  const byOutcome: Record<string, number> = {};
  for (const o of [...outcomes].sort((a, b) => compareText(a.outcome, b.outcome))) if (o.outcome !== '*') byOutcome[o.outcome] = o.n;

  const counts = (await sql<{ servers: number; services: number; exact: number; online: number }>`
    WITH obs AS (${obs})
    SELECT count(DISTINCT ip) FILTER (WHERE product = 'ms-exchange') AS servers,
           count(*) FILTER (WHERE product = 'ms-exchange') AS services,
           count(DISTINCT ip) FILTER (WHERE product = 'ms-exchange' AND build_precision = 'exact') AS exact,
           count(DISTINCT ip) FILTER (WHERE product = 'ms-exchange-online') AS online
    FROM obs`.execute(db)).rows[0];

  // One representative observation per server for edition and CU: exact build first, then newest, then lowest port.
  const editions = (await sql<{ edition: string; cu: string; servers: number }>`
    WITH obs AS (${obs}), rep AS (
      SELECT DISTINCT ON (ip) ip, coalesce(edition, 'unknown') AS edition, coalesce(cu, 'unknown') AS cu
      FROM obs WHERE product = 'ms-exchange'
      ORDER BY ip, (build_precision = 'exact') DESC NULLS LAST, (build IS NOT NULL) DESC, scanned_at DESC, port)
    SELECT edition, cu, count(*) AS servers FROM rep GROUP BY edition, cu`.execute(db)).rows;

  // On-premises Exchange observations in scope with their latest assessment (verdict arrays), and how
  // many such observations their address has (almost always 1: then no per-server merging is needed).
  const ex = sql`
    SELECT o.ip, o.build, coalesce(a.vulnerable, '{}') AS vulnerable, coalesce(a.indeterminate, '{}') AS indeterminate,
           count(*) OVER (PARTITION BY o.ip) AS nports
    FROM (${obs}) o
    LEFT JOIN LATERAL (
      SELECT vulnerable, indeterminate FROM assessments WHERE observation_id = o.id ORDER BY id DESC LIMIT 1) a ON TRUE
    WHERE o.product = 'ms-exchange'`;

  // Per (server, CVE): vulnerable on any port wins over indeterminate. An old build has ~90 CVEs, so the
  // single-port servers (nearly all) are counted straight from the arrays without grouping by address.
  const cveRows = (await sql<{ cve: string; vulnerable: number; indeterminate: number }>`
    WITH ex AS MATERIALIZED (${ex}),
    multi AS (
      SELECT ip, cve, bool_or(v) AS v FROM (
        SELECT ip, unnest(vulnerable) AS cve, TRUE AS v FROM ex WHERE nports > 1
        UNION ALL
        SELECT ip, unnest(indeterminate) AS cve, FALSE AS v FROM ex WHERE nports > 1) x
      GROUP BY ip, cve)
    SELECT cve, sum(v)::int AS vulnerable, sum(i)::int AS indeterminate FROM (
      SELECT cve, count(*) AS v, 0 AS i FROM ex, unnest(vulnerable) AS cve WHERE nports = 1 GROUP BY cve
      UNION ALL
      SELECT cve, 0, count(*) FROM ex, unnest(indeterminate) AS cve WHERE nports = 1 GROUP BY cve
      UNION ALL
      SELECT cve, count(*) FILTER (WHERE v), count(*) FILTER (WHERE NOT v) FROM multi GROUP BY cve) z
    GROUP BY cve`.execute(db)).rows;

  // Per server and headline group: vulnerable / indeterminate / build seen. The arrays are first cut down
  // to the headline CVEs, so the per-group tests look at a few ids, not ~90. Group '*' is all headline CVEs.
  const groupOf = HEADLINE_CVES.map((h) => h.group ?? h.cve);
  const statusRows = (await sql<{ grp: string; servers: number; vulnerable: number; patched: number; indet: number; any_indet: number }>`
    WITH hx AS MATERIALIZED (
      SELECT ip, build IS NOT NULL AS has_build, cardinality(indeterminate) > 0 AS any_i,
             ARRAY(SELECT c FROM unnest(vulnerable) AS c WHERE c = ANY(${headline}::text[])) AS hv,
             ARRAY(SELECT c FROM unnest(indeterminate) AS c WHERE c = ANY(${headline}::text[])) AS hi
      FROM (${ex}) e),
    g AS (
      SELECT grp, array_agg(cve) AS cves FROM unnest(${headline}::text[], ${groupOf}::text[]) AS t (cve, grp) GROUP BY grp
      UNION ALL SELECT '*', ${headline}::text[]),
    per AS (
      SELECT h.ip, g.grp, bool_or(h.has_build) AS hb, bool_or(h.hv && g.cves) AS v, bool_or(h.hi && g.cves) AS i,
             bool_or(h.any_i) AS ai
      FROM hx h CROSS JOIN g GROUP BY h.ip, g.grp)
    SELECT grp, count(*) AS servers,
           count(*) FILTER (WHERE v) AS vulnerable,
           count(*) FILTER (WHERE hb AND NOT v AND NOT i) AS patched,
           count(*) FILTER (WHERE i AND NOT v) AS indet,
           count(*) FILTER (WHERE ai) AS any_indet
    FROM per GROUP BY grp`.execute(db)).rows;
  const all = statusRows.find((r) => r.grp === '*');
  const status = all === undefined ? undefined : { servers: all.servers, vulnerable: all.vulnerable, patched: all.patched, headline_indet: all.indet, any_indet: all.any_indet };
  const groupRows = statusRows.filter((r) => r.grp !== '*');

  const servers = status?.servers ?? 0;
  const byGroup: GroupStatus[] = [...new Set(groupOf)].map((group) => {
    const row = groupRows.find((g) => g.grp === group);
    const p = row?.patched ?? 0;
    const v = row?.vulnerable ?? 0;
    return {
      group,
      cves: HEADLINE_CVES.filter((h) => (h.group ?? h.cve) === group).map((h) => h.cve),
      patched: p,
      vulnerable: v,
      undetermined: servers - p - v,
      patchedShare: servers === 0 ? null : p / servers,
    };
  });
  const patched = status?.patched ?? 0;
  const vulnerable = status?.vulnerable ?? 0;
  return {
    scope: { kind: scope.kind, scanIds: scans.listed, scan: scans.single },
    generatedAt: new Date().toISOString(),
    hosts: { attempted: total?.n ?? 0, distinctIps: total?.ips ?? 0, answered: byOutcome.answered ?? 0, byOutcome },
    exchange: {
      servers: counts?.servers ?? 0,
      services: counts?.services ?? 0,
      exactBuild: counts?.exact ?? 0,
      exchangeOnline: counts?.online ?? 0,
      byEdition: sumByEdition(editions),
      byEditionCu: [...editions].sort((a, b) => compareText(a.edition, b.edition) || compareCu(a.cu, b.cu)),
    },
    cves: orderCves(cveRows),
    indeterminate: { anyCve: status?.any_indet ?? 0, headline: status?.headline_indet ?? 0 },
    patched: {
      definition: PATCHED_DEFINITION,
      servers,
      patched,
      vulnerable,
      undetermined: servers - patched - vulnerable,
      patchedShare: servers === 0 ? null : patched / servers,
      vulnerableShare: servers === 0 ? null : vulnerable / servers,
      byGroup,
    },
  };
}

async function resolveScope(
  db: Kysely<DbSchema>,
  scope: ReportScope,
): Promise<{ ids: number[] | null; listed: string[]; single: ScanSummary | null }> {
  if (scope.kind === 'all') {
    const rows = await db.selectFrom('scans').select('id').orderBy('id').execute();
    return { ids: null, listed: rows.map((r) => String(r.id)), single: null };
  }
  let id: number | null;
  if (scope.kind === 'scan') {
    id = parseScanId(scope.id);
    if (id === null) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${JSON.stringify(scope.id)} (scan ids are numbers)`);
  } else {
    const latest = await db.selectFrom('scans').select('id').orderBy('id', 'desc').limit(1).executeTakeFirst();
    if (latest === undefined) return { ids: [], listed: [], single: null };
    id = latest.id;
  }
  const summary = (await listScans(db)).find((s) => s.id === String(id));
  if (summary === undefined) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${id}`);
  return { ids: [id], listed: [summary.id], single: summary };
}

function sumByEdition(rows: ReadonlyArray<{ edition: string; servers: number }>): Array<{ edition: string; servers: number }> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(r.edition, (m.get(r.edition) ?? 0) + r.servers);
  return [...m].map(([edition, servers]) => ({ edition, servers })).sort((a, b) => compareText(a.edition, b.edition));
}

function orderCves(rows: ReadonlyArray<{ cve: string; vulnerable: number; indeterminate: number }>): CveCount[] {
  const byCve = new Map(rows.map((r) => [r.cve, r]));
  const out: CveCount[] = HEADLINE_CVES.map((h) => ({
    cve: h.cve,
    headline: true,
    group: h.group,
    vulnerable: byCve.get(h.cve)?.vulnerable ?? 0,
    indeterminate: byCve.get(h.cve)?.indeterminate ?? 0,
  }));
  const headline = new Set(HEADLINE_CVES.map((h) => h.cve));
  const rest = rows
    .filter((r) => !headline.has(r.cve) && (r.vulnerable > 0 || r.indeterminate > 0))
    .sort((a, b) => b.vulnerable - a.vulnerable || b.indeterminate - a.indeterminate || compareText(a.cve, b.cve));
  for (const r of rest) out.push({ cve: r.cve, headline: false, group: null, vulnerable: r.vulnerable, indeterminate: r.indeterminate });
  return out;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const NATURAL = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** "CU9" before "CU10", "SP3 RU6" before "SP3 RU14"; "unknown" last. */
function compareCu(a: string, b: string): number {
  if (a === 'unknown' || b === 'unknown') return (a === 'unknown' ? 1 : 0) - (b === 'unknown' ? 1 : 0);
  return NATURAL.compare(a, b);
}
