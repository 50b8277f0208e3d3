/**
 * The patch curve's reads (issue 9 §4): the finding history (migration 0009) and the campaigns' outbox
 * (migration 0013) aggregated in the database, so a million findings come back as rows of counts (bounded by groups
 * times days, and groups times distinct minutes of duration), never as a row per finding:
 * - per group and day, how each series changed (src/stats/series.ts makes the running totals);
 * - per group and duration (minutes), how many findings were patched or censored then (src/stats/survival.ts).
 *
 * A finding's state over time comes from its state events (opened, reopened, closed with a reason), each valid
 * until the next one (a window `lead`), so a finding closed at day 10 and reopened at day 30 is exposed, patched,
 * then exposed again. Its warning is the earliest of a `notified` event and the `sent_at` of an outbox message
 * that carried it and was accepted (state sent or acknowledged): campaigns that record finding events and those
 * that only keep their outbox are both counted, and a finding is never counted as warned twice.
 * A campaign's findings: those its `notified` events name (detail.campaign, written by the outbox), and those
 * matched from its messages' frozen exposures (ip, port, CVE; a host's `compromised`) to the finding of that key
 * that was current when the campaign was created (the latest first seen before it), so unsent messages count too.
 * Groups use each finding's organisation as it is now (an owner change moves its whole history).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { COMPROMISED } from '../../findings/index.js';
import { dayOf, type Basis, type DayDelta, type DurationCount, type GroupBy, type SeriesName } from '../../stats/index.js';
import type { DbSchema } from './schema.js';

type Executor = Kysely<DbSchema>;

/** Names of findings without an organisation, or of an organisation without a sector (never a real name: parenthesised). */
export const UNATTRIBUTED = '(unattributed)';
export const NO_SECTOR = '(no sector)';

export interface StatsScope {
  /** null: one group, `all`. */
  readonly by: GroupBy | null;
  /** Only the findings this campaign warned about. */
  readonly campaignId: number | null;
  /** Time to patch and survival count only findings first detected at or after this time (the cohort); null: all.
   * The daily series count every finding (those detected earlier make the first day's level). */
  readonly detectedFrom: Date | null;
}

export interface CampaignInfo {
  readonly id: number;
  readonly name: string;
  readonly state: string;
  readonly createdAt: Date;
  /** Findings matched from its messages' exposures. */
  readonly findings: number;
  /** Messages accepted by a relay (sent or acknowledged). */
  readonly sent: number;
}

function groupExpr(by: GroupBy | null): RawBuilder<string> {
  switch (by) {
    case null: return sql<string>`'all'::text`;
    case 'sector': return sql<string>`CASE WHEN f.org_id IS NULL OR o.id IS NULL THEN ${UNATTRIBUTED}::text ELSE coalesce(nullif(o.sector, ''), ${NO_SECTOR}::text) END`;
    case 'org': return sql<string>`coalesce(o.name, ${UNATTRIBUTED}::text)`;
    case 'cve': return sql<string>`f.cve`;
  }
}

/**
 * The common CTEs: `cmf` (campaign message → finding), `scope` (the findings counted, with their group) and
 * `warn` (each finding's first successful warning and first acknowledgement).
 */
function scopeCtes(s: StatsScope, survivalBy: GroupBy = 'sector'): RawBuilder<unknown> {
  const campaignFilter = s.campaignId === null
    ? sql``
    : sql`AND (f.id IN (SELECT finding_id FROM cmf WHERE campaign_id = ${s.campaignId})
           OR f.id IN (SELECT finding_id FROM finding_events WHERE kind = 'notified' AND detail->>'campaign' = ${String(s.campaignId)}))`;
  return sql`
    cm AS (
      SELECT m.id AS message_id, m.campaign_id, c.created_at, m.sent_at, m.acknowledged_at, m.state,
             (x->>'ip')::inet AS ip, k.port_key, k.cve
      FROM campaign_messages m
      JOIN campaigns c ON c.id = m.campaign_id
      CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(m.exposures) = 'array' THEN m.exposures ELSE '[]'::jsonb END) x
      CROSS JOIN LATERAL (
        SELECT v->>'cve' AS cve, coalesce((x->>'port')::int, -1) AS port_key
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x->'cves') = 'array' THEN x->'cves' ELSE '[]'::jsonb END) v
        UNION ALL
        SELECT ${COMPROMISED}::text, -1 WHERE x->>'compromised' = 'true'
      ) k
      WHERE m.state NOT IN ('suppressed', 'cancelled')
    ),
    cmf AS (
      SELECT DISTINCT ON (cm.message_id, cm.ip, cm.port_key, cm.cve)
             f.id AS finding_id, cm.campaign_id, cm.sent_at, cm.acknowledged_at, cm.state
      FROM cm
      JOIN findings f ON f.ip = cm.ip AND coalesce(f.port, -1) = cm.port_key AND f.cve = cm.cve AND f.first_seen <= cm.created_at
      ORDER BY cm.message_id, cm.ip, cm.port_key, cm.cve, f.first_seen DESC
    ),
    scope AS (
      SELECT f.id, f.cve, f.first_seen, ${groupExpr(s.by)} AS grp, ${groupExpr(survivalBy)} AS sgrp
      FROM findings f
      LEFT JOIN organisations o ON o.id = f.org_id
      WHERE true ${campaignFilter}
    ),
    warn AS (
      SELECT w.finding_id AS id,
             min(w.at) FILTER (WHERE w.kind = 'notified') AS notified_at,
             min(w.at) FILTER (WHERE w.kind = 'acknowledged') AS ack_at
      FROM (
        SELECT e.finding_id, e.kind, e.at FROM finding_events e JOIN scope s ON s.id = e.finding_id
        WHERE e.kind IN ('notified', 'acknowledged')
        UNION ALL
        SELECT finding_id, 'notified', sent_at FROM cmf WHERE sent_at IS NOT NULL AND state IN ('sent', 'acknowledged')
        UNION ALL
        SELECT finding_id, 'acknowledged', acknowledged_at FROM cmf WHERE acknowledged_at IS NOT NULL
      ) w
      GROUP BY w.finding_id
    )`;
}

export interface StatsRange {
  /** First day of the series; null: the day of the scope's first detection (or `to` when there is none). */
  readonly from: string | null;
  readonly to: string;
  /** Open findings are censored at this time (the end of `to`, or now when that is earlier). */
  readonly end: Date;
}

export interface StatsAggregates {
  /** The first day of the series (as given, or the default). */
  readonly from: string;
  readonly deltas: readonly DayDelta[];
  /** Per `by` group (or `all`). */
  readonly detection: readonly DurationCount[];
  readonly warning: readonly DurationCount[];
  /** Per survival group (sector unless `by` is given), from detection. */
  readonly survival: readonly DurationCount[];
}

/**
 * Everything the patch curve needs, in one REPEATABLE READ transaction (every figure from the same snapshot, even
 * while a fold runs), with the finding history read twice in all: the scope, each finding's first warning and its
 * state intervals (a window `lead` over its state events) go into temporary tables, and the aggregates read those.
 * `work_mem` is raised for this transaction only: the sorts of a million findings would otherwise spill to disk.
 */
export async function aggregateStats(db: Executor, s: StatsScope, range: StatsRange, survivalBy: GroupBy): Promise<StatsAggregates> {
  return db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
    await sql`SET LOCAL work_mem = '64MB'`.execute(trx);
    await sql`
      CREATE TEMP TABLE stats_scope ON COMMIT DROP AS
      WITH ${scopeCtes(s, survivalBy)}
      SELECT s.id, s.cve, s.first_seen, s.grp, s.sgrp, w.notified_at, w.ack_at
      FROM scope s LEFT JOIN warn w ON w.id = s.id`.execute(trx);
    await sql`
      CREATE TEMP TABLE stats_iv ON COMMIT DROP AS
      SELECT s.id, s.grp, s.sgrp, s.cve, s.first_seen, s.notified_at, e.kind, e.at, e.detail->>'reason' AS reason,
             lead(e.at) OVER (PARTITION BY e.finding_id ORDER BY e.at, e.id) AS until
      FROM stats_scope s JOIN finding_events e ON e.finding_id = s.id
      WHERE e.kind IN ('opened', 'reopened', 'closed')`.execute(trx);
    await sql`ANALYZE stats_scope`.execute(trx);
    await sql`ANALYZE stats_iv`.execute(trx);

    const first = (await sql<{ at: Date | null }>`SELECT min(first_seen) AS at FROM stats_scope`.execute(trx)).rows[0]?.at ?? null;
    const from = range.from ?? (first === null || dayOf(first) > range.to ? range.to : dayOf(first));
    const deltas = await sql<{ group: string; day: string; series: SeriesName; delta: number }>`
      WITH iv AS (
        SELECT grp, at, until,
               CASE WHEN kind = 'closed' THEN CASE WHEN reason = 'patched' THEN 'patched' END
                    WHEN cve = ${COMPROMISED} THEN 'compromised' ELSE 'exposed' END AS series
        FROM stats_iv
      ),
      d AS (
        SELECT grp, series, (at AT TIME ZONE 'UTC')::date AS day, 1 AS n FROM iv WHERE series IS NOT NULL
        UNION ALL
        SELECT grp, series, (until AT TIME ZONE 'UTC')::date, -1 FROM iv WHERE series IS NOT NULL AND until IS NOT NULL
        UNION ALL
        SELECT grp, 'notified', (notified_at AT TIME ZONE 'UTC')::date, 1 FROM stats_scope WHERE notified_at IS NOT NULL
        UNION ALL
        SELECT grp, 'acknowledged', (ack_at AT TIME ZONE 'UTC')::date, 1 FROM stats_scope WHERE ack_at IS NOT NULL
      )
      SELECT grp AS "group", to_char(greatest(day, ${from}::date), 'YYYY-MM-DD') AS day, series, sum(n)::int AS delta
      FROM d WHERE day <= ${range.to}::date
      GROUP BY 1, 2, 3 HAVING sum(n) <> 0
      ORDER BY 1, 2, 3`.execute(trx);

    // Each CVE finding's state at `end` (the interval holding it): closed patched → patched then; closed otherwise →
    // censored then; open → censored at `end`. From `warning`: only findings warned before their end.
    const endAt = range.end.toISOString();
    const durations = await sql<{ basis: Basis | 'survival'; group: string; minutes: number; patched: number; censored: number }>`
      WITH ends AS (
        SELECT grp, sgrp, first_seen, notified_at, (kind = 'closed' AND reason = 'patched') AS patched,
               CASE WHEN kind = 'closed' THEN at ELSE ${endAt}::timestamptz END AS stop
        FROM stats_iv
        WHERE cve <> ${COMPROMISED} AND at < ${endAt}::timestamptz AND (until IS NULL OR until >= ${endAt}::timestamptz)
          ${s.detectedFrom === null ? sql`` : sql`AND first_seen >= ${s.detectedFrom.toISOString()}::timestamptz`}
      ),
      timed AS (
        SELECT 'detection' AS basis, grp AS g, first_seen AS start, stop, patched FROM ends
        UNION ALL
        SELECT 'warning', grp, notified_at, stop, patched FROM ends WHERE notified_at IS NOT NULL
        UNION ALL
        SELECT 'survival', sgrp, first_seen, stop, patched FROM ends
      )
      SELECT basis, g AS "group", floor(extract(epoch FROM stop - start) / 60)::int AS minutes,
             count(*) FILTER (WHERE patched)::int AS patched, count(*) FILTER (WHERE NOT patched)::int AS censored
      FROM timed WHERE start <= stop
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`.execute(trx);
    const of = (b: Basis | 'survival'): DurationCount[] => durations.rows.filter((r) => r.basis === b)
      .map((r) => ({ group: r.group, minutes: r.minutes, patched: r.patched, censored: r.censored }));
    return { from, deltas: deltas.rows, detection: of('detection'), warning: of('warning'), survival: of('survival') };
  });
}

/** A campaign with how many findings it carried and messages it got accepted; null when there is none. */
export async function campaignInfo(db: Executor, id: number): Promise<CampaignInfo | null> {
  const s: StatsScope = { by: null, campaignId: id, detectedFrom: null };
  const r = await sql<{ id: number; name: string; state: string; created_at: Date; findings: number; sent: number }>`
    WITH ${scopeCtes(s)}
    SELECT c.id, c.name, c.state, c.created_at,
           (SELECT count(*) FROM scope)::int AS findings,
           (SELECT count(*) FROM campaign_messages m WHERE m.campaign_id = c.id AND m.state IN ('sent', 'acknowledged'))::int AS sent
    FROM campaigns c WHERE c.id = ${id}`.execute(db);
  const c = r.rows[0];
  return c === undefined ? null : { id: c.id, name: c.name, state: c.state, createdAt: c.created_at, findings: c.findings, sent: c.sent };
}
