/**
 * The stored picture as rows: hosts attempted and answered, one product's servers by edition and CU,
 * servers per CVE and status, and servers per CVE set split by (build seen, some CVE of the set
 * vulnerable, some indeterminate). Queries only: which CVEs are headline and what "patched" means are the
 * product's report policy, decided in src/services/report-policy.ts from these counts.
 *
 * Counting rules (also in the README's `tocsin report` section):
 * - Scope: one scan (the latest by default, or `--scan ID`), or all scans. For all scans, each
 *   (ip, port) counts once with its LATEST attempt (hosts scanned/answered) and its LATEST observation
 *   (everything about the product): an unreachable host keeps the picture of its last answer, since
 *   unreachable is not fixed.
 * - "Attempts" are (ip, port) pairs; "servers" are distinct IP addresses with an observation of the
 *   product's id. A server seen on 80 and 443 counts once; ids counted apart (e.g. cloud front ends) are
 *   never servers.
 * - A server's verdict for a CVE is the worst over its ports: vulnerable if any observation says
 *   vulnerable, else indeterminate if any says indeterminate, else not vulnerable.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import type { DbSchema, ScanStatus } from './schema.js';
import { LIVENESS_COLUMNS, liveStatusOfRow, type LivenessRow } from './scan-liveness.js';
import { parseScanId } from './scan-store.js';

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
  /** Migration 0005: who asked to cancel it from another process (`tocsin cancel`, the API); null: nobody. */
  readonly cancelledBy?: string | null;
}

/** What to count: whose records are servers, which ids are counted apart, and which CVE sets to split by. */
export interface ReportQuery {
  /** Records with this product id are the servers. */
  readonly product: string;
  /** Distinct IPs with these ids are counted apart (never as servers). */
  readonly countedApart: readonly string[];
  /** Named CVE sets (a CVE may be in several); each gets its split of servers. */
  readonly sets: ReadonlyArray<{ readonly name: string; readonly cves: readonly string[] }>;
}

/** Servers of one CVE set with one combination of (build seen, some CVE vulnerable, some indeterminate). */
export interface SetSplitRow {
  readonly set: string;
  readonly hasBuild: boolean;
  readonly vulnerable: boolean;
  readonly indeterminate: boolean;
  readonly servers: number;
}

export interface ReportRows {
  readonly scope: {
    readonly kind: ReportScope['kind'];
    /** Scans covered; for "all", every stored scan. Empty when nothing is stored. */
    readonly scanIds: readonly string[];
    /** The scan, when the scope is one scan. */
    readonly scan: ScanSummary | null;
  };
  readonly hosts: {
    /** (ip, port) pairs attempted. */
    readonly attempted: number;
    readonly distinctIps: number;
    /** (ip, port) pairs that answered HTTP(S). */
    readonly answered: number;
    readonly byOutcome: Readonly<Record<string, number>>;
  };
  /** Distinct IPs with the product. */
  readonly servers: number;
  /** (ip, port) pairs with the product. */
  readonly services: number;
  /** Servers whose exact build (with security update) was seen. */
  readonly exactBuild: number;
  /** Distinct IPs of the ids counted apart. */
  readonly countedApart: number;
  /** One representative observation per server (exact build first, then newest, then lowest port). */
  readonly byEditionCu: ReadonlyArray<{ readonly edition: string; readonly cu: string; readonly servers: number }>;
  /** Per CVE with any server vulnerable or indeterminate: servers vulnerable, servers indeterminate (and not vulnerable). */
  readonly cves: ReadonlyArray<{ readonly cve: string; readonly vulnerable: number; readonly indeterminate: number }>;
  /** Servers with at least one CVE (of any set or none) indeterminate. */
  readonly anyIndeterminate: number;
  readonly sets: readonly SetSplitRow[];
}

/** Every stored scan, newest first; `exchangeServers` counts distinct IPs with an observation of `product`. */
export async function listScans(db: Kysely<DbSchema>, product: string): Promise<ScanSummary[]> {
  const r = await sql<ScanRow>`
    SELECT s.id, s.status, s.started_at, s.finished_at, jsonb_array_length(s.targets) AS targets, s.ports,
           ${LIVENESS_COLUMNS}, s.cancel_requested_by,
           a.attempts, a.answered, a.timed_out, a.retried, a.unanswered,
           (SELECT count(DISTINCT o.ip) FROM observations o WHERE o.scan_id = s.id AND o.product = ${product}) AS exchange_servers
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
  readonly cancel_requested_by: string | null;
}

function toSummary(row: ScanRow): ScanSummary {
  const status = liveStatusOfRow(row);
  return {
    id: String(row.id),
    status,
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
    // A request that came after the last attempt was stored did not stop the scan: it finished.
    cancelledBy: status === 'running' || status === 'interrupted' ? row.cancel_requested_by : null,
  };
}

/**
 * The rows for a scope. Throws TocsinError TOCSIN_SCAN_NOT_FOUND for an unknown `--scan` id. With nothing
 * stored, returns zeros with an empty scanIds.
 */
export async function queryReportRows(db: Kysely<DbSchema>, scope: ReportScope, q: ReportQuery): Promise<ReportRows> {
  const scans = await resolveScope(db, scope, q.product);
  const ids = scans.ids;
  const filter = (alias: string): RawBuilder<unknown> =>
    ids === null ? sql`TRUE` : sql`${sql.ref(`${alias}.scan_id`)} = ANY(${ids}::bigint[])`;

  // Latest attempt per (ip, port) in scope.
  const att = sql`
    SELECT DISTINCT ON (a.ip, a.port) a.ip, a.port, a.outcome FROM scan_attempts a
    WHERE ${filter('a')} ORDER BY a.ip, a.port, a.attempted_at DESC, a.id DESC`;
  // Latest observation per (ip, port) in scope, then the product's ones.
  const obs = sql`
    SELECT DISTINCT ON (o.ip, o.port) o.id, o.ip, o.port, o.product, o.edition, o.cu, o.build, o.build_precision, o.scanned_at
    FROM observations o WHERE o.scan_id IS NOT NULL AND ${filter('o')}
    ORDER BY o.ip, o.port, o.scanned_at DESC, o.id DESC`;

  const outcomes = (await sql<{ outcome: string; n: number; ips: number }>`
    WITH att AS (${att}) SELECT outcome, count(*) AS n, 0 AS ips FROM att GROUP BY outcome
    UNION ALL SELECT '*', count(*), count(DISTINCT ip) FROM att`.execute(db)).rows;
  const total = outcomes.find((o) => o.outcome === '*');
  const byOutcome: Record<string, number> = {};
  for (const o of [...outcomes].sort((a, b) => compareText(a.outcome, b.outcome))) if (o.outcome !== '*') byOutcome[o.outcome] = o.n;

  const counts = (await sql<{ servers: number; services: number; exact: number; apart: number }>`
    WITH obs AS (${obs})
    SELECT count(DISTINCT ip) FILTER (WHERE product = ${q.product}) AS servers,
           count(*) FILTER (WHERE product = ${q.product}) AS services,
           count(DISTINCT ip) FILTER (WHERE product = ${q.product} AND build_precision = 'exact') AS exact,
           count(DISTINCT ip) FILTER (WHERE product = ANY(${[...q.countedApart]}::text[])) AS apart
    FROM obs`.execute(db)).rows[0];

  // One representative observation per server for edition and CU: exact build first, then newest, then lowest port.
  const editions = (await sql<{ edition: string; cu: string; servers: number }>`
    WITH obs AS (${obs}), rep AS (
      SELECT DISTINCT ON (ip) ip, coalesce(edition, 'unknown') AS edition, coalesce(cu, 'unknown') AS cu
      FROM obs WHERE product = ${q.product}
      ORDER BY ip, (build_precision = 'exact') DESC NULLS LAST, (build IS NOT NULL) DESC, scanned_at DESC, port)
    SELECT edition, cu, count(*) AS servers FROM rep GROUP BY edition, cu`.execute(db)).rows;

  // The product's observations in scope with their latest assessment (verdict arrays), and how many such
  // observations their address has (almost always 1: then no per-server merging is needed).
  const ex = sql`
    SELECT o.ip, o.build, coalesce(a.vulnerable, '{}') AS vulnerable, coalesce(a.indeterminate, '{}') AS indeterminate,
           count(*) OVER (PARTITION BY o.ip) AS nports
    FROM (${obs}) o
    LEFT JOIN LATERAL (
      SELECT vulnerable, indeterminate FROM assessments WHERE observation_id = o.id ORDER BY id DESC LIMIT 1) a ON TRUE
    WHERE o.product = ${q.product}`;

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

  // Per server and set: build seen / some CVE of the set vulnerable / some indeterminate. The arrays are
  // first cut down to the CVEs of any set, so the per-set tests look at a few ids, not ~90.
  const setCves = q.sets.flatMap((x) => x.cves);
  const setNames = q.sets.flatMap((x) => x.cves.map(() => x.name));
  const split = (await sql<{ grp: string; hb: boolean; v: boolean; i: boolean; servers: number }>`
    WITH hx AS MATERIALIZED (
      SELECT ip, build IS NOT NULL AS has_build,
             ARRAY(SELECT c FROM unnest(vulnerable) AS c WHERE c = ANY(${setCves}::text[])) AS sv,
             ARRAY(SELECT c FROM unnest(indeterminate) AS c WHERE c = ANY(${setCves}::text[])) AS si
      FROM (${ex}) e),
    g AS (
      SELECT grp, array_agg(cve) AS cves FROM unnest(${setCves}::text[], ${setNames}::text[]) AS t (cve, grp) GROUP BY grp),
    per AS (
      SELECT h.ip, g.grp, bool_or(h.has_build) AS hb, bool_or(h.sv && g.cves) AS v, bool_or(h.si && g.cves) AS i
      FROM hx h CROSS JOIN g GROUP BY h.ip, g.grp)
    SELECT grp, hb, v, i, count(*) AS servers FROM per GROUP BY grp, hb, v, i`.execute(db)).rows;

  const anyIndet = (await sql<{ n: number }>`
    WITH ex AS (${ex}) SELECT count(DISTINCT ip) AS n FROM ex WHERE cardinality(indeterminate) > 0`.execute(db)).rows[0];

  return {
    scope: { kind: scope.kind, scanIds: scans.listed, scan: scans.single },
    hosts: { attempted: total?.n ?? 0, distinctIps: total?.ips ?? 0, answered: byOutcome.answered ?? 0, byOutcome },
    servers: counts?.servers ?? 0,
    services: counts?.services ?? 0,
    exactBuild: counts?.exact ?? 0,
    countedApart: counts?.apart ?? 0,
    byEditionCu: editions,
    cves: cveRows,
    anyIndeterminate: anyIndet?.n ?? 0,
    sets: split.map((r) => ({ set: r.grp, hasBuild: r.hb, vulnerable: r.v, indeterminate: r.i, servers: r.servers })),
  };
}

async function resolveScope(
  db: Kysely<DbSchema>,
  scope: ReportScope,
  product: string,
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
  const summary = (await listScans(db, product)).find((s) => s.id === String(id));
  if (summary === undefined) throw new TocsinError('TOCSIN_SCAN_NOT_FOUND', `no scan with id ${id}`);
  return { ids: [id], listed: [summary.id], single: summary };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
