/**
 * Schedules' storage (migration 0021): the schedules, their runs (one per tick that had work, with the stage it
 * reached so a killed tick is taken up where it stopped), when each target was last scanned by a schedule, a lease
 * per schedule (one tick at a time, whichever process runs it), and the facts the cadence policy needs about the
 * hosts and networks of a scope. Every statement that takes a name, a CIDR or a scope value binds it.
 */
import { hostname } from 'node:os';
import { sql, type Kysely } from 'kysely';
import { TocsinError } from '../../core/errors.js';
import type { DbSchema, Json } from './schema.js';

type Db = Kysely<DbSchema>;

export type ScheduleScope =
  | { readonly kind: 'constituency' }
  | { readonly kind: 'all' }
  | { readonly kind: 'org'; readonly org: string }
  | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

export interface ScheduleRow {
  readonly id: number;
  readonly name: string;
  readonly policy: Json;
  readonly scope: ScheduleScope;
  readonly enabled: boolean;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly lastTick: Date | null;
  readonly nextDue: Date | null;
}

export type RunStage = 'planned' | 'scanned' | 'folded' | 'done' | 'failed';

export interface RunRow {
  readonly id: number;
  readonly scheduleId: number;
  readonly tickAt: Date;
  readonly stage: RunStage;
  readonly targets: readonly string[];
  readonly served: readonly string[];
  readonly scanId: number | null;
  readonly outcome: Json;
  readonly followUpCampaigns: readonly number[];
  readonly error: string | null;
}

/** A JSON object's fields (an array, a scalar or null read as no fields). */
export function jsonObject(j: Json | undefined): { readonly [key: string]: Json } {
  return typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as { readonly [key: string]: Json }) : {};
}

export function scopeFromJson(j: Json): ScheduleScope {
  const o = jsonObject(j);
  const cidrs = o.cidrs;
  if (o.kind === 'org' && typeof o.org === 'string') return { kind: 'org', org: o.org };
  if (o.kind === 'cidrs' && Array.isArray(cidrs)) return { kind: 'cidrs', cidrs: (cidrs as readonly Json[]).filter((c): c is string => typeof c === 'string') };
  if (o.kind === 'all') return { kind: 'all' };
  return { kind: 'constituency' };
}

function strings(j: Json): string[] {
  return Array.isArray(j) ? j.filter((x): x is string => typeof x === 'string') : [];
}

type ScheduleSelect = { id: number; name: string; policy: Json; scope: Json; enabled: boolean; created_at: Date; created_by: string; last_tick: Date | null; next_due: Date | null };

function toRow(r: ScheduleSelect): ScheduleRow {
  return {
    id: Number(r.id), name: r.name, policy: r.policy, scope: scopeFromJson(r.scope), enabled: r.enabled, createdAt: r.created_at,
    createdBy: r.created_by, lastTick: r.last_tick, nextDue: r.next_due,
  };
}

const COLUMNS = ['id', 'name', 'policy', 'scope', 'enabled', 'created_at', 'created_by', 'last_tick', 'next_due'] as const;

export async function insertSchedule(db: Db, s: { name: string; policy: Json; scope: ScheduleScope; createdBy: string }): Promise<ScheduleRow> {
  try {
    const r = await db.insertInto('schedules')
      .values({ name: s.name, policy: JSON.stringify(s.policy), scope: JSON.stringify(s.scope), created_by: s.createdBy })
      .returning(COLUMNS).executeTakeFirstOrThrow();
    return toRow(r);
  } catch (e) {
    if ((e as { code?: string }).code === '23505') throw new TocsinError('TOCSIN_ARG_INVALID', `a schedule named ${JSON.stringify(s.name)} exists already (tocsin schedule list)`);
    throw e;
  }
}

export async function listSchedules(db: Db): Promise<ScheduleRow[]> {
  return (await db.selectFrom('schedules').select(COLUMNS).orderBy('id').execute()).map(toRow);
}

export async function scheduleByName(db: Db, name: string): Promise<ScheduleRow | null> {
  const r = await db.selectFrom('schedules').select(COLUMNS).where(sql<boolean>`lower(name) = lower(${name})`).executeTakeFirst();
  return r === undefined ? null : toRow(r);
}

export async function removeSchedule(db: Db, name: string): Promise<boolean> {
  const r = await db.deleteFrom('schedules').where(sql<boolean>`lower(name) = lower(${name})`).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function setScheduleTick(db: Db, id: number, lastTick: Date, nextDue: Date | null): Promise<void> {
  await db.updateTable('schedules').set({ last_tick: lastTick, next_due: nextDue }).where('id', '=', id).execute();
}

/** This process, as a lease owner: `host:pid`. */
export function leaseOwner(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * Takes the schedule's lease for `ms` (real time: leases guard processes, not the tick's clock). Free when unset,
 * expired, ours, or held by a process of this host that no longer exists (a killed daemon's tick is taken up at
 * once, not after the lease runs out).
 */
export async function takeLease(db: Db, id: number, owner: string, ms: number): Promise<boolean> {
  const cur = await db.selectFrom('schedules').select(['lease_owner', 'lease_until']).where('id', '=', id).executeTakeFirst();
  if (cur === undefined) return false;
  let dead = false;
  const m = /^(.*):(\d+)$/.exec(cur.lease_owner ?? '');
  if (m !== null && m[1] === hostname() && Number(m[2]) !== process.pid) {
    try {
      process.kill(Number(m[2]), 0);
    } catch (e) {
      dead = (e as { code?: string }).code === 'ESRCH';
    }
  }
  const r = await db.updateTable('schedules')
    .set({ lease_owner: owner, lease_until: sql<Date>`now() + make_interval(secs => ${ms / 1000})` })
    .where('id', '=', id)
    .where((eb) => eb.or([
      eb('lease_until', 'is', null),
      eb('lease_until', '<', sql<Date>`now()`),
      eb('lease_owner', '=', owner),
      ...(dead ? [eb('lease_owner', '=', cur.lease_owner)] : []),
    ]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function releaseLease(db: Db, id: number, owner: string): Promise<void> {
  await db.updateTable('schedules').set({ lease_owner: null, lease_until: null }).where('id', '=', id).where('lease_owner', '=', owner).execute();
}

type RunSelect = { id: number; schedule_id: number; tick_at: Date; stage: RunStage; targets: Json; served: Json; scan_id: number | null; outcome: Json; follow_up_campaigns: number[]; error: string | null };

function toRun(r: RunSelect): RunRow {
  return {
    id: Number(r.id), scheduleId: Number(r.schedule_id), tickAt: r.tick_at, stage: r.stage, targets: strings(r.targets), served: strings(r.served),
    scanId: r.scan_id === null ? null : Number(r.scan_id), outcome: r.outcome, followUpCampaigns: r.follow_up_campaigns.map(Number), error: r.error,
  };
}

const RUN_COLUMNS = ['id', 'schedule_id', 'tick_at', 'stage', 'targets', 'served', 'scan_id', 'outcome', 'follow_up_campaigns', 'error'] as const;

/** The schedule's unfinished run (a tick that was killed), or null. */
export async function openRun(db: Db, scheduleId: number): Promise<RunRow | null> {
  const r = await db.selectFrom('schedule_runs').select(RUN_COLUMNS).where('schedule_id', '=', scheduleId)
    .where('stage', 'not in', ['done', 'failed']).executeTakeFirst();
  return r === undefined ? null : toRun(r);
}

export async function createRun(db: Db, r: { scheduleId: number; tickAt: Date; targets: readonly string[]; served: readonly string[]; outcome: Json }): Promise<RunRow> {
  const row = await db.insertInto('schedule_runs').values({
    schedule_id: r.scheduleId, tick_at: r.tickAt, stage: 'planned', targets: JSON.stringify(r.targets), served: JSON.stringify(r.served), outcome: JSON.stringify(r.outcome),
  }).returning(RUN_COLUMNS).executeTakeFirstOrThrow();
  return toRun(row);
}

export async function setRunScan(db: Db, runId: number, scanId: number): Promise<void> {
  await db.updateTable('schedule_runs').set({ scan_id: scanId }).where('id', '=', runId).execute();
}

/** The scan is done: the run moves to `scanned` and every served target is recorded at the tick's clock, atomically. */
export async function markScanned(db: Db, run: RunRow): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx.updateTable('schedule_runs').set({ stage: 'scanned' }).where('id', '=', run.id).where('stage', '=', 'planned').execute();
    const targets = [...new Set(run.served)];
    for (let i = 0; i < targets.length; i += 1000) {
      const chunk = targets.slice(i, i + 1000);
      await tx.insertInto('schedule_targets')
        .values(chunk.map((t) => ({ schedule_id: run.scheduleId, target: t, last_at: run.tickAt, last_run_id: run.id })))
        .onConflict((oc) => oc.columns(['schedule_id', 'target']).doUpdateSet({ last_at: (eb) => eb.ref('excluded.last_at'), last_run_id: (eb) => eb.ref('excluded.last_run_id') }))
        .execute();
    }
  });
}

export async function setRunStage(db: Db, runId: number, stage: RunStage, outcome?: Json, error?: string): Promise<void> {
  await db.updateTable('schedule_runs').set({
    stage,
    ...(outcome === undefined ? {} : { outcome: JSON.stringify(outcome) }),
    ...(error === undefined ? {} : { error }),
    ...(stage === 'done' || stage === 'failed' ? { finished_at: sql<Date>`now()` } : {}),
  }).where('id', '=', runId).execute();
}

export async function addRunCampaign(db: Db, runId: number, campaignId: number): Promise<void> {
  await sql`UPDATE schedule_runs SET follow_up_campaigns = array_append(follow_up_campaigns, ${campaignId}::bigint)
    WHERE id = ${runId} AND NOT (${campaignId}::bigint = ANY (follow_up_campaigns))`.execute(db);
}

export async function listRuns(db: Db, scheduleId: number | null, limit: number): Promise<RunRow[]> {
  let q = db.selectFrom('schedule_runs').select(RUN_COLUMNS).orderBy('id', 'desc').limit(limit);
  if (scheduleId !== null) q = q.where('schedule_id', '=', scheduleId);
  return (await q.execute()).map(toRun);
}

export async function scanStatus(db: Db, scanId: number): Promise<string | null> {
  const r = await db.selectFrom('scans').select('status').where('id', '=', scanId).executeTakeFirst();
  return r?.status ?? null;
}

// ---------------------------------------------------------------------------------------------------------------
// Facts for the cadence policy.

export interface HostFactsRow {
  readonly ip: string;
  readonly openCves: readonly string[];
  readonly compromised: boolean;
  readonly product: string | null;
  readonly lastScannedAt: Date | null;
}

/** Which organisation a scope names (TOCSIN_ORG_NOT_FOUND for an unknown name). */
async function orgIdOf(db: Db, name: string): Promise<number> {
  const r = await db.selectFrom('organisations').select('id').where(sql<boolean>`lower(name) = lower(${name})`).executeTakeFirst();
  if (r === undefined) throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `the schedule's scope names organisation ${JSON.stringify(name)}, which is not in the constituency`);
  return Number(r.id);
}

async function hostFilter(db: Db, scope: ScheduleScope, ip: ReturnType<typeof sql.ref>): Promise<ReturnType<typeof sql<boolean>>> {
  switch (scope.kind) {
    case 'all': return sql<boolean>`true`;
    case 'constituency':
      return sql<boolean>`(EXISTS (SELECT 1 FROM attributions a WHERE a.ip = ${ip} AND a.org_id IS NOT NULL)
        OR EXISTS (SELECT 1 FROM constituency_networks n WHERE n.network >>= ${ip}))`;
    case 'org': {
      const org = await orgIdOf(db, scope.org);
      return sql<boolean>`(EXISTS (SELECT 1 FROM attributions a WHERE a.ip = ${ip} AND a.org_id = ${org})
        OR EXISTS (SELECT 1 FROM constituency_networks n WHERE n.org_id = ${org} AND n.network >>= ${ip}))`;
    }
    case 'cidrs': return sql<boolean>`${ip} <<= ANY (${[...scope.cidrs]}::cidr[])`;
  }
}

/**
 * The hosts of the scope the policy judges one by one: those with open findings and those whose observations name
 * one of `productIds`; with their open CVEs, compromise, product and when they were last scanned (the newest
 * observation, or this schedule's last scan of them, whichever is later: a host gone dark has no new observation).
 */
export async function scopeHosts(db: Db, scheduleId: number, scope: ScheduleScope, productIds: readonly string[]): Promise<HostFactsRow[]> {
  const filter = await hostFilter(db, scope, sql.ref('h.ip'));
  const rows = await sql<{ ip: string; cves: string[]; compromised: boolean; product: string | null; observed: Date | null; scheduled: Date | null }>`
    WITH open_f AS (
      SELECT ip, array_agg(DISTINCT cve) FILTER (WHERE verdict <> 'compromised') AS cves, bool_or(verdict = 'compromised') AS compromised
      FROM findings WHERE current AND state = 'open' GROUP BY ip
    ), prod AS (
      SELECT DISTINCT ON (ip) ip, product FROM observations WHERE product = ANY (${[...productIds]}::text[]) ORDER BY ip, scanned_at DESC, id DESC
    ), h AS (SELECT ip FROM open_f UNION SELECT ip FROM prod)
    SELECT host(h.ip) AS ip, coalesce(f.cves, '{}') AS cves, coalesce(f.compromised, false) AS compromised, p.product,
      (SELECT max(o.scanned_at) FROM observations o WHERE o.ip = h.ip) AS observed,
      (SELECT t.last_at FROM schedule_targets t WHERE t.schedule_id = ${scheduleId} AND t.target = host(h.ip)) AS scheduled
    FROM h LEFT JOIN open_f f ON f.ip = h.ip LEFT JOIN prod p ON p.ip = h.ip
    WHERE ${filter}
    ORDER BY h.ip`.execute(db);
  return rows.rows.map((r) => {
    const last = r.observed === null ? r.scheduled : r.scheduled === null ? r.observed : r.observed > r.scheduled ? r.observed : r.scheduled;
    return { ip: r.ip, openCves: r.cves, compromised: r.compromised, product: r.product, lastScannedAt: last };
  });
}

/**
 * The networks of the scope, as the sweep blocks `split` makes of each (src/schedules sweepBlocks), each with when
 * this schedule last swept it (null: never).
 */
export async function scopeNetworks(db: Db, scheduleId: number, scope: ScheduleScope, split: (cidr: string) => readonly string[] = (c) => [c]): Promise<{ cidr: string; lastScannedAt: Date | null }[]> {
  let cidrs: string[];
  if (scope.kind === 'cidrs') cidrs = [...scope.cidrs];
  else if (scope.kind === 'org') {
    const org = await orgIdOf(db, scope.org);
    cidrs = (await sql<{ c: string }>`SELECT DISTINCT network::text AS c FROM constituency_networks WHERE org_id = ${org} ORDER BY 1`.execute(db)).rows.map((r) => r.c);
  } else cidrs = (await sql<{ c: string }>`SELECT DISTINCT network::text AS c FROM constituency_networks ORDER BY 1`.execute(db)).rows.map((r) => r.c);
  const blocks = [...new Set(cidrs.flatMap((c) => split(c)))];
  if (blocks.length === 0) return [];
  const last = new Map<string, Date>();
  for (let i = 0; i < blocks.length; i += 5000) {
    const rows = await db.selectFrom('schedule_targets').select(['target', 'last_at']).where('schedule_id', '=', scheduleId).where('target', 'in', blocks.slice(i, i + 5000)).execute();
    for (const r of rows) last.set(r.target, r.last_at);
  }
  return blocks.map((c) => ({ cidr: c, lastScannedAt: last.get(c) ?? null }));
}

/**
 * Verification rescans organisations asked for in the portal (migration 0018's `rescan_requests`, queued), as
 * (ip, requested at), within the scope. Read only: the request's own runner marks it done; the schedule only puts
 * those hosts first in line. Empty when the table does not exist (an older schema).
 */
export async function verificationRequests(db: Db, scope: ScheduleScope): Promise<{ ip: string; requestedAt: Date }[]> {
  const exists = await sql<{ t: string | null }>`SELECT to_regclass('rescan_requests')::text AS t`.execute(db);
  if (exists.rows[0]?.t === null || exists.rows[0]?.t === undefined) return [];
  const filter = await hostFilter(db, scope, sql.ref('x.ip'));
  const rows = await sql<{ ip: string; requested_at: Date }>`
    SELECT host(x.ip) AS ip, min(x.requested_at) AS requested_at FROM (
      SELECT CASE WHEN jsonb_typeof(e) = 'object' THEN e->>'ip' ELSE e #>> '{}' END::inet AS ip, r.requested_at
      FROM rescan_requests r, jsonb_array_elements(r.targets) e
      WHERE r.status = 'queued'
        AND (jsonb_typeof(e) = 'object' AND e->>'ip' ~ '^[0-9a-fA-F:.]+$' OR jsonb_typeof(e) = 'string' AND e #>> '{}' ~ '^[0-9a-fA-F:.]+$')
    ) x WHERE ${filter} GROUP BY x.ip ORDER BY 2`.execute(db);
  return rows.rows.map((r) => ({ ip: r.ip, requestedAt: r.requested_at }));
}

// ---------------------------------------------------------------------------------------------------------------
// Campaigns the schedule follows up.

/** Approved first warnings (not follow-ups, not cancelled), oldest first. */
export async function rootCampaigns(db: Db): Promise<number[]> {
  const rows = await sql<{ id: number }>`SELECT id FROM campaigns WHERE state = 'approved' AND (selection->'followUpOf') IS NULL ORDER BY id`.execute(db);
  return rows.rows.map((r) => Number(r.id));
}

/** Campaigns `who` created that are not cancelled and still have a message to send (queued or deferred). */
export async function unsentCampaignsBy(db: Db, who: string): Promise<{ id: number; state: string }[]> {
  const rows = await sql<{ id: number; state: string }>`
    SELECT c.id, c.state FROM campaigns c WHERE c.created_by = ${who} AND c.state <> 'cancelled'
      AND EXISTS (SELECT 1 FROM campaign_messages m WHERE m.campaign_id = c.id AND m.state IN ('queued', 'deferred'))
    ORDER BY c.id`.execute(db);
  return rows.rows.map((r) => ({ id: Number(r.id), state: r.state }));
}

/**
 * When a schedule last created a follow-up to campaign `root`, at the tick's clock (null: never). The outbox stamps
 * `sent_at` with the database's clock; a schedule judges its own follow-up interval on its own clock too, so a tick
 * replayed at a given time (`--at`) and a tick on the real clock decide alike.
 */
export async function lastFollowUpTick(db: Db, root: number): Promise<Date | null> {
  const r = await sql<{ t: Date | null }>`
    SELECT max(r.tick_at) AS t FROM schedule_runs r JOIN campaigns c ON c.id = ANY (r.follow_up_campaigns)
    WHERE c.selection->>'followUpOf' = ${String(root)} AND c.state <> 'cancelled'`.execute(db);
  return r.rows[0]?.t ?? null;
}
