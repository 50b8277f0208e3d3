/**
 * Schedules (issue 11 §4): recurring rescans that run without anyone typing a command. `runScheduleTick` is the
 * one entry point, for the `tocsin schedule run` daemon and for a job worker alike: for each enabled schedule it
 * 1. picks the targets due at `now` by the schedule's cadence policy (src/schedules: verification requests first,
 *    then hosts with open critical findings, other product hosts, the scope's networks), capped per tick;
 * 2. scans them in-process through the normal scan service (exclusions, rate limits and User-Agent from the
 *    configuration, every attempt stored);
 * 3. folds the findings, so what the scan saw patched closes;
 * 4. creates a follow-up campaign for each first warning whose organisations are still exposed and were last warned
 *    at least the policy's interval ago (services/follow-up.ts), approves it as the schedule and sends it through the
 *    configured mailer.
 * Each step is recorded on the tick's `schedule_runs` row before the next begins, so a tick killed anywhere is taken
 * up by the next one at the same stage with the same clock: the scan is resumed (not started again), the fold is
 * incremental, a follow-up already created is found (and not created twice: follow-up.ts skips organisations with
 * one on its way), and the outbox sends each message exactly once. One tick runs per schedule at a time (a lease).
 * Ticks with nothing due write no run.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { detectFormat } from '../ingest/registry.js';
import { splitLines } from '../ingest/lines.js';
import type { Database } from '../platform/db/connect.js';
import {
  addRunCampaign, createRun, insertSchedule, jsonObject, lastFollowUpTick, leaseOwner, listSchedules, markScanned, openRun, releaseLease, removeSchedule, rootCampaigns,
  scanStatus, scheduleByName, scopeHosts, scopeNetworks, setRunScan, setRunStage, setScheduleTick, takeLease, unsentCampaignsBy,
  verificationRequests, type RunRow, type ScheduleRow, type ScheduleScope,
} from '../platform/db/schedule-store.js';
import type { Json } from '../platform/db/schema.js';
import { PRODUCTS } from '../products/registry.js';
import { parseCidr } from '../core/ip.js';
import {
  dueTargets, groupDiscovered, policyFromJson, sweepBlocks, type CadencePolicy, type DiscoveryGroup, type DuePlan, type Knowledge, type OpenPort,
} from '../schedules/index.js';
import { approveCampaign, sendCampaign, type CampaignMailer, type RenderContext } from './campaigns.js';
import { foldFindings } from './findings.js';
import { followUpCampaign } from './follow-up.js';
import type { ScanEngine } from './scan-engine.js';
import { planScan, resumeScan, startScan, type ScanDeps, type ScanResult } from './scan-service.js';
import { scanStorageOn } from './scan-storage.js';

export type { ScheduleRow, ScheduleScope, RunRow };
export { listRuns } from '../platform/db/schedule-store.js';

/** How long a tick's lease lasts without renewal (renewed every third of it while the tick runs). */
const LEASE_MS = 120_000;
/** A tick re-reads the facts at least this often even when the stored next due time is later. */
const RECHECK_MS = 3_600_000;
/** A run that failed this many times is marked failed (and the next tick plans afresh). */
const MAX_RUN_ERRORS = 3;

export interface SchedulerScanSettings {
  readonly excludeFiles: readonly string[];
  readonly rate: number;
  readonly ratePerNetwork: number;
  readonly concurrency: number;
  readonly userAgent: string;
  /** Worker threads, 0 = automatic. */
  readonly workers: number;
  readonly timeoutMs?: number;
  readonly hostBudgetMs?: number;
}

export interface SchedulerDeps {
  readonly scan: SchedulerScanSettings;
  /** Sends the follow-ups; null: they are created (draft) and left for an analyst. */
  readonly mailer: CampaignMailer | null;
  readonly render: RenderContext | null;
  /** Only this schedule (default: every enabled one). */
  readonly only?: string;
  /** Stops the tick between steps and cancels a running scan (it is resumed by the next tick). */
  readonly signal?: AbortSignal;
  readonly engine?: ScanEngine;
  log?(line: string): void;
}

export interface FollowUpDone {
  readonly campaign: number;
  readonly followUpOf: number;
  readonly queued: readonly string[];
}

export interface ScheduleTickResult {
  readonly schedule: string;
  /** What happened: a run did its work, nothing was due, another process holds the lease, ... */
  readonly status: 'ran' | 'nothing-due' | 'busy' | 'disabled' | 'interrupted' | 'error';
  readonly runId: number | null;
  /** True when the run was a killed tick's, taken up. */
  readonly resumed: boolean;
  readonly targets: readonly string[];
  readonly deferred: number;
  readonly scanId: number | null;
  readonly closed: number;
  readonly followUps: readonly FollowUpDone[];
  readonly sent: number;
  readonly nextDue: Date | null;
  readonly error: string | null;
}

function knowledge(): Knowledge {
  const criticalCves = new Set<string>();
  for (const p of PRODUCTS) for (const h of p.cveGroups().headline) criticalCves.add(h.cve);
  return { criticalCves, productIds: new Set(PRODUCTS.map((p) => p.id)) };
}

/** The schedule's due plan at `now` (read only). */
export async function duePlan(database: Database, s: ScheduleRow, now: Date): Promise<DuePlan> {
  const db = database.db;
  const k = knowledge();
  const policy = policyFromJson(s.policy);
  const [hosts, networks, verification] = await Promise.all([
    scopeHosts(db, s.id, s.scope, [...k.productIds]),
    scopeNetworks(db, s.id, s.scope, (c) => sweepBlocks(c, policy.maxTargetsPerTick)),
    verificationRequests(db, s.scope),
  ]);
  return dueTargets({ hosts, networks, verification, knowledge: k, policy, now });
}

/**
 * One tick of every enabled schedule (or `deps.only`) at `now`. Schedules are independent: one's failure is reported
 * in its result and the others still run. Throws only when `deps.only` names no schedule.
 */
export async function runScheduleTick(database: Database, deps: SchedulerDeps, now: Date): Promise<ScheduleTickResult[]> {
  let schedules = await listSchedules(database.db);
  if (deps.only !== undefined) {
    const one = await scheduleByName(database.db, deps.only);
    if (one === null) throw new TocsinError('TOCSIN_ARG_INVALID', `no schedule named ${JSON.stringify(sanitiseText(deps.only, { max: 64 }))} (tocsin schedule list)`);
    schedules = [one];
  }
  const out: ScheduleTickResult[] = [];
  for (const s of schedules) {
    if (deps.signal?.aborted === true) break;
    out.push(await tickOne(database, s, deps, now));
  }
  return out;
}

function blank(s: ScheduleRow, status: ScheduleTickResult['status'], extra: Partial<ScheduleTickResult> = {}): ScheduleTickResult {
  return { schedule: s.name, status, runId: null, resumed: false, targets: [], deferred: 0, scanId: null, closed: 0, followUps: [], sent: 0, nextDue: s.nextDue, error: null, ...extra };
}

async function tickOne(database: Database, s: ScheduleRow, deps: SchedulerDeps, now: Date): Promise<ScheduleTickResult> {
  const db = database.db;
  if (!s.enabled) return blank(s, 'disabled');
  const owner = leaseOwner();
  if (!(await takeLease(db, s.id, owner, LEASE_MS))) return blank(s, 'busy');
  let renewing: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    renewing = takeLease(db, s.id, owner, LEASE_MS).catch(() => undefined);
  }, LEASE_MS / 3);
  timer.unref();
  let run: RunRow | null = null;
  try {
    run = await openRun(db, s.id);
    const resumed = run !== null;
    let deferred = 0;
    if (run === null) {
      const verification = await verificationRequests(db, s.scope);
      if (verification.length === 0 && s.nextDue !== null && s.nextDue > now && s.lastTick !== null && now.getTime() - s.lastTick.getTime() < RECHECK_MS) {
        return blank(s, 'nothing-due');
      }
      const plan = await duePlan(database, s, now);
      if (plan.due.length === 0) {
        await setScheduleTick(db, s.id, now, plan.nextDueAt);
        return blank(s, 'nothing-due', { nextDue: plan.nextDueAt });
      }
      deferred = plan.deferred;
      const targets = plan.due.map((d) => d.target);
      const byClass: Record<string, number> = {};
      for (const d of plan.due) byClass[d.cls] = (byClass[d.cls] ?? 0) + 1;
      run = await createRun(db, { scheduleId: s.id, tickAt: now, targets, served: [...targets, ...plan.covered], outcome: { byClass, deferred, skipped: plan.skipped.length } });
      deps.log?.(`schedule ${s.name}: run ${run.id}: ${targets.length} target(s) due (${Object.entries(byClass).map(([k, n]) => `${n} ${k}`).join(', ')})${deferred > 0 ? `, ${deferred} left for the next tick` : ''}`);
    } else {
      deps.log?.(`schedule ${s.name}: taking up run ${run.id} (stage ${run.stage}, tick at ${run.tickAt.toISOString()})`);
    }
    return await advance(database, s, run, deps, resumed, deferred);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (run !== null) await recordError(database, run, message).catch(() => undefined);
    deps.log?.(`schedule ${s.name}: ${sanitiseText(message, { max: 300 })}`);
    return blank(s, 'error', { runId: run?.id ?? null, error: message });
  } finally {
    clearInterval(timer);
    await renewing;
    await releaseLease(db, s.id, owner).catch(() => undefined);
  }
}

async function recordError(database: Database, run: RunRow, message: string): Promise<void> {
  const o = jsonObject(run.outcome);
  const errors = (typeof o.errors === 'number' ? o.errors : 0) + 1;
  await setRunStage(database.db, run.id, errors >= MAX_RUN_ERRORS ? 'failed' : run.stage, { ...o, errors }, message.slice(0, 2000));
}

/** Takes a run from its stage to `done`; each stage is recorded before the next begins. */
async function advance(database: Database, s: ScheduleRow, run: RunRow, deps: SchedulerDeps, resumed: boolean, deferred: number): Promise<ScheduleTickResult> {
  const db = database.db;
  const policy = policyFromJson(s.policy);
  const who = `schedule:${s.name}`;
  const now = run.tickAt;
  let outcome: { [k: string]: Json } = { ...jsonObject(run.outcome) };
  const stopped = (): boolean => deps.signal?.aborted === true;
  let scanId = run.scanId;
  let stage = run.stage;

  if (stage === 'planned') {
    const r = await scanStage(database, run, policy, deps);
    if (r === null) return blank(s, 'interrupted', { runId: run.id, resumed, targets: run.targets, scanId: run.scanId });
    scanId = r.scanId;
    outcome = { ...outcome, scan: { id: scanId, answered: r.answered, unanswered: r.unanswered } };
    await setRunStage(db, run.id, 'planned', outcome);
    await markScanned(db, { ...run, scanId });
    stage = 'scanned';
  }
  if (stopped()) return blank(s, 'interrupted', { runId: run.id, resumed, targets: run.targets, scanId });

  if (stage === 'scanned') {
    const fold = await foldFindings(db, { now, who });
    outcome = { ...outcome, fold: { opened: fold.opened, closed: fold.closed, reopened: fold.reopened, deferred: fold.deferred } };
    await setRunStage(db, run.id, 'folded', outcome);
    stage = 'folded';
    deps.log?.(`schedule ${s.name}: findings folded: ${fold.closed} closed, ${fold.opened} opened, ${fold.reopened} reopened`);
  }
  if (stopped()) return blank(s, 'interrupted', { runId: run.id, resumed, targets: run.targets, scanId });

  const followUps: FollowUpDone[] = [];
  let sent = 0;
  if (stage === 'folded') {
    if (policy.followUp) {
      for (const root of await rootCampaigns(db)) {
        const last = await lastFollowUpTick(db, root);
        if (last !== null && now.getTime() - last.getTime() < policy.followUpAfterMs) continue;
        const r = await followUpCampaign(db, root, { afterMs: policy.followUpAfterMs, createdBy: who, now, fold: false });
        if (r.id === null) continue;
        await addRunCampaign(db, run.id, r.id);
        followUps.push({ campaign: r.id, followUpOf: r.followUpOf, queued: r.queued });
        deps.log?.(`schedule ${s.name}: follow-up campaign ${r.id} to campaign ${r.followUpOf}: ${r.queued.length} organisation(s) still exposed`);
      }
      // Every follow-up this schedule made that still has messages to send, including a killed tick's.
      for (const c of await unsentCampaignsBy(db, who)) {
        if (deps.mailer === null || deps.render === null) {
          deps.log?.(`schedule ${s.name}: campaign ${c.id} left as ${c.state}: no mailer is configured (TOCSIN_SMTP_URL, TOCSIN_MAIL_FROM)`);
          continue;
        }
        if (c.state === 'draft') await approveCampaign(db, c.id, who);
        const r = await sendCampaign(db, c.id, deps.mailer, { ...deps.render, now: () => now, ...(deps.signal === undefined ? {} : { signal: deps.signal }) });
        sent += r.sent;
        deps.log?.(`schedule ${s.name}: campaign ${c.id}: ${r.sent} sent, ${r.deferred} deferred, ${r.bounced} bounced, ${r.uncertain} uncertain`);
      }
    }
    outcome = { ...outcome, followUps: followUps.map((f) => ({ campaign: f.campaign, followUpOf: f.followUpOf, queued: f.queued.length })), sent };
    await setRunStage(db, run.id, 'done', outcome);
  }
  // When something is next due, with this run's targets now recorded.
  const after = await duePlan(database, { ...s, lastTick: now }, now);
  const nextDue = after.due.length > 0 ? now : after.nextDueAt;
  await setScheduleTick(db, s.id, now, nextDue);
  const closedCount = jsonObject(outcome.fold).closed;
  const closed = typeof closedCount === 'number' ? closedCount : 0;
  return { schedule: s.name, status: 'ran', runId: run.id, resumed, targets: run.targets, deferred, scanId, closed, followUps, sent, nextDue, error: null };
}

/** Scans the run's targets (or finishes the scan a killed tick started). Null when the signal stopped it. */
async function scanStage(database: Database, run: RunRow, policy: CadencePolicy, deps: SchedulerDeps): Promise<{ scanId: number; answered: number; unanswered: number } | null> {
  const scanDeps: ScanDeps = {
    storage: { open: async () => scanStorageOn(database, { ownsDatabase: false }), explainFailure: (e) => e },
    output: { replayStored: false, open: async () => ({ write: async () => undefined, close: async () => undefined, release: async () => undefined }) },
    signal: deps.signal ?? new AbortController().signal,
    clock: { now: () => Date.now() },
    ...(deps.engine === undefined ? {} : { engine: deps.engine }),
    events: {
      stored: (id) => {
        // Recorded before any batch is: a kill from here on resumes this scan instead of starting another.
        pendingScan = setRunScan(database.db, run.id, Number(id));
      },
      ...(deps.log === undefined ? {} : { warning: (m: string) => deps.log?.(`scan warning: ${sanitiseText(m, { max: 300 })}`) }),
    },
  };
  let pendingScan: Promise<void> = Promise.resolve();
  let result: ScanResult;
  if (run.scanId !== null && (await scanStatus(database.db, run.scanId)) === 'finished') {
    return { scanId: run.scanId, answered: 0, unanswered: 0 };
  } else if (run.scanId !== null) {
    deps.log?.(`run ${run.id}: resuming scan ${run.scanId}`);
    result = await resumeScan(String(run.scanId), scanDeps, { workers: deps.scan.workers });
  } else {
    const plan = await planScan({
      targets: run.targets,
      ports: policy.ports,
      excludeFiles: deps.scan.excludeFiles,
      exclude: [],
      concurrency: deps.scan.concurrency,
      rate: deps.scan.rate,
      ratePerNetwork: deps.scan.ratePerNetwork,
      userAgent: deps.scan.userAgent,
      ...(deps.scan.timeoutMs === undefined ? {} : { timeoutMs: deps.scan.timeoutMs }),
      ...(deps.scan.hostBudgetMs === undefined ? {} : { hostBudgetMs: deps.scan.hostBudgetMs }),
    }, { stdin: Readable.from([]), ...(deps.log === undefined ? {} : { warning: (m: string) => deps.log?.(m) }) });
    result = await startScan(plan, scanDeps, { workers: deps.scan.workers });
  }
  await pendingScan;
  if (result.status === 'interrupted' || result.scanId === null) return null;
  return { scanId: Number(result.scanId), answered: result.stats.answered, unanswered: result.stats.unanswered };
}

// ---------------------------------------------------------------------------------------------------------------
// Schedule administration (the CLI's list/add/remove).

export const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `constituency`, `all`, `org:NAME`, `cidr:192.0.2.0/24,198.51.100.0/24` → a scope (TOCSIN_ARG_INVALID otherwise). */
export function parseScope(raw: string): ScheduleScope {
  const t = raw.trim();
  if (t === 'constituency') return { kind: 'constituency' };
  if (t === 'all') return { kind: 'all' };
  if (t.startsWith('org:') && t.length > 4 && t.length <= 204) return { kind: 'org', org: t.slice(4).trim() };
  if (t.startsWith('cidr:') || t.startsWith('cidrs:')) {
    const list = t.slice(t.indexOf(':') + 1).split(',').map((x) => x.trim()).filter((x) => x !== '');
    const cidrs: string[] = [];
    for (const c of list) {
      const p = parseCidr(c.includes('/') ? c : `${c}/${c.includes(':') ? 128 : 32}`);
      if (typeof p === 'string') throw new TocsinError('TOCSIN_ARG_INVALID', `--scope: ${sanitiseText(c, { max: 60 })}: ${p}`);
      cidrs.push(c.includes('/') ? c : `${c}/${c.includes(':') ? 128 : 32}`);
    }
    if (cidrs.length === 0 || cidrs.length > 10_000) throw new TocsinError('TOCSIN_ARG_INVALID', '--scope cidr: takes 1 to 10000 CIDRs, comma-separated');
    return { kind: 'cidrs', cidrs };
  }
  throw new TocsinError('TOCSIN_ARG_INVALID', '--scope must be constituency, all, org:NAME or cidr:CIDR[,CIDR...]');
}

export function describeScope(s: ScheduleScope): string {
  switch (s.kind) {
    case 'constituency': return 'constituency';
    case 'all': return 'all';
    case 'org': return `org:${s.org}`;
    case 'cidrs': return `cidr:${s.cidrs.join(',')}`;
  }
}

export async function addSchedule(database: Database, s: { name: string; policy: CadencePolicy; scope: ScheduleScope; createdBy: string }): Promise<ScheduleRow> {
  if (!SCHEDULE_NAME.test(s.name)) throw new TocsinError('TOCSIN_ARG_INVALID', 'a schedule name is 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit');
  return insertSchedule(database.db, { name: s.name, policy: { ...s.policy }, scope: s.scope, createdBy: s.createdBy });
}

export async function deleteSchedule(database: Database, name: string): Promise<void> {
  if (!(await removeSchedule(database.db, name))) throw new TocsinError('TOCSIN_ARG_INVALID', `no schedule named ${JSON.stringify(sanitiseText(name, { max: 64 }))} (tocsin schedule list)`);
}

export { listSchedules };

// ---------------------------------------------------------------------------------------------------------------
// Discovery input (issue 11 §3).

export interface Discovery {
  readonly format: string;
  readonly groups: readonly DiscoveryGroup[];
  /** Open (ip, port) pairs read. */
  readonly open: number;
  /** Lines the parser could not read (not quarantined here: `tocsin feeds import` keeps them). */
  readonly problems: number;
}

/**
 * Reads a port scanner's output (masscan -oL/-oJ/-oD, zmap CSV, nmap XML: the parsers `tocsin feeds import` uses)
 * and groups the open TCP ports by address, so each group is scanned on exactly its open ports.
 */
export async function readDiscovery(path: string): Promise<Discovery> {
  let head: string;
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(8192);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      head = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read --from-discovery ${path}: ${(e as Error).message}`);
  }
  const name = basename(path);
  const format = detectFormat(head, name, path);
  const pairs: OpenPort[] = [];
  let problems = 0;
  for await (const item of format.parse(splitLines(createReadStream(path)), { file: path, baseName: name, reportType: null })) {
    if (item.type === 'problem') problems++;
    else if (item.type === 'row' && item.row.kind === 'port-open' && item.row.port !== null && (item.row.transport ?? 'tcp') === 'tcp') {
      pairs.push({ ip: item.row.ip, port: item.row.port });
    }
  }
  return { format: format.id, groups: groupDiscovered(pairs), open: pairs.length, problems };
}
