/**
 * Distributed scans (issue 11 §1-2): `tocsin scan --distributed` cuts a planned scan into blocks and queues one
 * job per block; `tocsin worker` processes, on any host that reaches the database, run the blocks through the
 * same engine, kit and scan store as a local scan, so results land in the same tables, once per (scan, ip, port).
 *
 * Why this is exactly once and polite in sum (docs/ARCHITECTURE.md, "Distributed scans"):
 * - Blocks hold whole /24 (IPv4) and /64 (IPv6) networks, never part of one, so a network is only ever scanned
 *   by one worker at a time and the per-network rate (`--rate-per-network`) is a local limiter of that worker
 *   that holds across workers. A block is run by the holder of its lease only (worker-store.ts claimBlock).
 * - The overall rate (`--rate`) is one GCRA bucket in PostgreSQL per scan; each worker process reserves slots
 *   in small batches (one UPDATE ... RETURNING), so all workers together open at most rate connections per
 *   second (plus the burst), however many there are.
 * - Exclusions are resolved when the scan is created (files read, entries canonicalised, stored in the plan)
 *   and every worker's engine checks each address against the stored list before any token or socket.
 * - A worker killed with `kill -9` stops beating; after the lease (TOCSIN_WORKER_LEASE_SECONDS, default 30 s)
 *   any live worker unlocks its queue jobs and requeues its blocks; the next worker reads what the block
 *   already stored (doneKeysInSpan) and skips it, and recordBatch is idempotent, so nothing is stored twice.
 * - A worker that cannot refresh its heartbeat for 2/3 of the lease takes no new connection token and stops
 *   its blocks (it may have been declared dead): a block is not scanned by two workers at once.
 * Workers also run the schedules (issue 11 §4): a `tocsin_schedule_tick` job a minute from the queue's crontab
 * calls runScheduleTick, so schedules run wherever workers run. A tick's scan runs in-process in the worker that
 * took the tick (not cut into blocks): the per-schedule lease keeps it to one worker.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { TocsinError } from '../core/errors.js';
import { networkKey, parseIp } from '../core/ip.js';
import { runScan, type ConnectionLimiter, type EngineStats } from '../scan/engine.js';
import { engineOptionsFor } from '../scan/setup.js';
import { expandTargets } from '../scan/targets.js';
import { createRateLimiter, systemClock } from '../scan/rate-limit.js';
import { Batcher } from '../scan/batcher.js';
import { planFromStored, planToStored, type ScanPlan } from '../scan/plan.js';
import type { AttemptResult } from '../scan/ports.js';
import type { Database } from '../platform/db/connect.js';
import { createScanStore } from '../platform/db/scan-store.js';
import {
  activeDistributedScans, beat, cancelDistributed, claimBlock, createDistribution, deadWorkers, distributedProgress, doneKeysInSpan,
  finishBlock, listWorkers, openBlockCount, reapWorkers, requeuedBlocks, registerWorker, releaseBlock, reserveSlots, setQueueWorkerIds, unregisterWorker,
  type BlockSpec, type DistributedProgress, type WorkerRow,
} from '../platform/db/worker-store.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';
import { openJobQueue, runJobQueue, type BlockJob, type QueueRunner } from './job-queue.js';
import { defaultKit } from './default-kit.js';
import { runScheduleTick, type SchedulerDeps } from './scheduler.js';

export type { DistributedProgress, WorkerRow };

/** Addresses per block by default (a /24). */
export const DEFAULT_BLOCK_SIZE = 256;
/** Default lease: a worker silent this long is dead and its blocks go to others. */
export const DEFAULT_LEASE_SECONDS = 30;
/** IPv6 range texts may not exceed a /112 (targets-grammar.ts MIN_V6_PREFIX). */
const MAX_V6_RUN = 65_536n;

// ---------------------------------------------------------------------------------------------------------
// Blocks

interface NetworkPart {
  readonly family: 4 | 6;
  readonly key: number | string;
  /** Sort values of the network's lowest and highest address in the plan. */
  first: bigint;
  last: bigint;
  /** Target texts: runs of consecutive addresses ("a" or "a-b") and pinned "name=ip". */
  readonly texts: string[];
  hosts: number;
}

function ipValue(ip: string): { readonly family: 4 | 6; readonly v: bigint } {
  const p = parseIp(ip);
  if (p === null) throw new TocsinError('TOCSIN_TARGET_INVALID', `not an address: ${ip}`);
  return p.family === 4 ? { family: 4, v: BigInt(p.value) } : { family: 6, v: p.value };
}

/**
 * Cuts a plan's targets into blocks of about `blockSize` addresses made of whole /24 (IPv4) and /64 (IPv6)
 * networks (a network larger than a block is one block of its own), one address family per block, in address
 * order. Pinned names (name=ip) go to the block of their network. Exclusions stay in the plan: excluded
 * addresses are recorded as such by the worker, as by a local scan. Every address of the plan is in exactly
 * one block (expandTargets deduplicates). Costs one pass over the addresses.
 */
export function splitIntoBlocks(targets: readonly string[], blockSize: number = DEFAULT_BLOCK_SIZE): BlockSpec[] {
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new TocsinError('TOCSIN_ARG_INVALID', `the block size must be a positive whole number, got ${blockSize}`);
  const nets = new Map<number | string, NetworkPart>();
  const order: NetworkPart[] = [];
  let run: { part: NetworkPart; start: bigint; end: bigint; startText: string; endText: string } | null = null;
  const closeRun = (): void => {
    if (run === null) return;
    run.part.texts.push(run.start === run.end ? run.startText : `${run.startText}-${run.endText}`);
    run = null;
  };
  for (const t of expandTargets(targets, { order: 'sequential' })) {
    const { family, v } = ipValue(t.ip);
    const key = networkKey(t.ip) ?? t.ip;
    let part = nets.get(key);
    if (part === undefined) {
      part = { family, key, first: v, last: v, texts: [], hosts: 0 };
      nets.set(key, part);
      order.push(part);
    }
    part.hosts++;
    if (v < part.first) part.first = v;
    if (v > part.last) part.last = v;
    if (t.hostname !== null) {
      part.texts.push(`${t.hostname}=${t.ip}`);
      continue;
    }
    const cur = run as { part: NetworkPart; start: bigint; end: bigint; startText: string; endText: string } | null;
    if (cur !== null && cur.part === part && v === cur.end + 1n && (family === 4 || v - cur.start < MAX_V6_RUN)) {
      cur.end = v;
      cur.endText = t.ip;
      continue;
    }
    closeRun();
    run = { part, start: v, end: v, startText: t.ip, endText: t.ip };
  }
  closeRun();
  const sorted = [...order].sort((a, b) => (a.family !== b.family ? a.family - b.family : a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const blocks: BlockSpec[] = [];
  let cur: NetworkPart[] = [];
  let hosts = 0;
  const flush = (): void => {
    if (cur.length === 0) return;
    const firstPart = cur[0] as NetworkPart;
    let lo = firstPart.first;
    let hi = firstPart.last;
    for (const p of cur) {
      if (p.first < lo) lo = p.first;
      if (p.last > hi) hi = p.last;
    }
    blocks.push({ targets: cur.flatMap((p) => p.texts), hosts, firstIp: formatValue(firstPart.family, lo), lastIp: formatValue(firstPart.family, hi) });
    cur = [];
    hosts = 0;
  };
  for (const p of sorted) {
    const prev = cur[0];
    if (prev !== undefined && (prev.family !== p.family || hosts + p.hosts > blockSize)) flush();
    cur.push(p);
    hosts += p.hosts;
  }
  flush();
  return blocks;
}

function formatValue(family: 4 | 6, v: bigint): string {
  if (family === 4) {
    const n = Number(v);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups.join(':');
}

// ---------------------------------------------------------------------------------------------------------
// Submitting and following a scan

export interface Submitted {
  readonly scanId: string;
  readonly blocks: number;
  readonly hosts: number;
}

/**
 * Stores a new scan of `plan`, its blocks and its rate bucket, and queues one job per block. Returns at once;
 * workers (`tocsin worker`) run it. The stored plan is the local scan's (so `tocsin results` and `--resume`
 * read it as any scan), plus the block size.
 */
export async function submitDistributedScan(database: Database, plan: ScanPlan, o: { readonly blockSize?: number } = {}): Promise<Submitted> {
  const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
  const blocks = splitIntoBlocks(plan.targets, blockSize);
  if (blocks.length === 0) throw new TocsinError('TOCSIN_TARGET_INVALID', 'no address left to scan');
  // Opened first: a database where the queue cannot live gets no scan that nobody would ever run.
  const queue = await openJobQueue(database.url);
  try {
    const store = createScanStore(database.db, { kbRevision: loadExchangeKb().version });
    const created = await store.createScan({
      targets: plan.targets,
      ports: plan.ports.map((p) => p.port),
      options: { ...planToStored(plan), distributed: { blockSize, blocks: blocks.length } },
    });
    const id = Number(created.id);
    const burst = Math.max(1, Math.ceil(plan.rate * 0.05));
    await createDistribution(database.db, id, blocks, plan.rate > 0 ? { perSecond: plan.rate, burst } : null);
    await queue.addBlockJobs(id, blocks.map((_, i) => i));
    return { scanId: created.id, blocks: blocks.length, hosts: blocks.reduce((n, b) => n + b.hosts, 0) };
  } finally {
    await queue.release();
  }
}

export async function scanProgress(database: Database, scanId: string): Promise<DistributedProgress | null> {
  return distributedProgress(database.db, Number(scanId));
}

/** True when the scan will not change any more: finished, or cancelled/interrupted with no block running. */
export function isSettled(p: DistributedProgress): boolean {
  if (p.status === 'finished' || p.status === 'failed') return true;
  return p.status === 'interrupted' && p.blocks.running === 0;
}

/**
 * Polls the scan until it settles (workers finished or cancelled it). `signal` stops the waiting only: the
 * scan keeps running on the workers. Resolves with the last progress read (null: the scan is gone).
 */
export async function waitForScan(
  database: Database, scanId: string, o: { readonly signal: AbortSignal; readonly pollMs?: number; onProgress?(p: DistributedProgress): void },
): Promise<DistributedProgress | null> {
  for (;;) {
    const p = await scanProgress(database, scanId);
    if (p === null || isSettled(p)) return p;
    // `tocsin cancel` only stores the request: applied here too, so it takes effect with no worker running.
    if (p.cancelledBy !== null && p.status === 'running') {
      await cancelDistributed(database.db, Number(scanId), p.cancelledBy);
      continue;
    }
    o.onProgress?.(p);
    if (o.signal.aborted) return p;
    await systemClock.sleep(o.pollMs ?? 1000, o.signal).catch(() => undefined);
    if (o.signal.aborted) return p;
  }
}

/** `tocsin workers status`: live and stale workers, and the distributed scans with open or recent blocks. */
export interface WorkersStatus {
  readonly leaseSeconds: number;
  readonly workers: readonly WorkerRow[];
  readonly scans: ReadonlyArray<DistributedProgress & { readonly scanId: number; readonly hostsPerSecond: number; readonly etaSeconds: number | null }>;
}

export async function workersStatus(database: Database, leaseSeconds: number): Promise<WorkersStatus> {
  const workers = await listWorkers(database.db);
  const scans = [];
  for (const id of await activeDistributedScans(database.db)) {
    const p = await distributedProgress(database.db, id);
    if (p === null) continue;
    const hostsPerSecond = p.lastMinute / 60;
    const left = Math.max(0, p.hosts - p.stored);
    const etaSeconds = isSettled(p) ? 0 : hostsPerSecond > 0 ? Math.round(left / hostsPerSecond) : null;
    scans.push({ ...p, scanId: id, hostsPerSecond, etaSeconds });
  }
  return { leaseSeconds, workers, scans };
}

// ---------------------------------------------------------------------------------------------------------
// The worker

/**
 * The overall rate shared by every worker through the database: slots reserved in batches (one round trip
 * per batch), handed out locally in order. Slots older than the burst allowance are dropped unused (a late
 * slot used now would crowd the next ones): fewer connections, never more.
 */
class SharedRate {
  private slots: number[] = [];
  private next = 0;
  private filling: Promise<void> | null = null;
  private none = false;

  constructor(private readonly reserve: (n: number) => Promise<{ readonly firstInMs: number; readonly intervalMs: number } | null>, private readonly batch: number) {}

  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted === true) throw signal.reason ?? new Error('aborted');
      if (this.none) return;
      const now = performance.now();
      while (this.next < this.slots.length && (this.slots[this.next] as number) < now - this.staleMs) this.next++;
      if (this.next < this.slots.length) {
        const at = this.slots[this.next++] as number;
        if (at > now) await systemClock.sleep(at - now, signal);
        return;
      }
      this.filling ??= this.fill().finally(() => {
        this.filling = null;
      });
      await this.filling;
    }
  }

  private staleMs = 50;

  private async fill(): Promise<void> {
    const r = await this.reserve(this.batch);
    // Mapped with the local time after the answer: late by at most the round trip, never early.
    const base = performance.now();
    if (r === null) {
      this.none = true;
      return;
    }
    this.staleMs = Math.max(20, r.intervalMs * 2);
    this.slots = Array.from({ length: this.batch }, (_, i) => base + r.firstInMs + i * r.intervalMs);
    this.next = 0;
  }
}

export interface WorkerOptions {
  readonly database: Database;
  /** Blocks run at once by this process. */
  readonly concurrency: number;
  readonly leaseSeconds: number;
  /** Exit when no block is queued or running anywhere (tests, batch jobs). */
  readonly once: boolean;
  /** Stops the worker: running blocks are aborted and given back (queued for another worker). */
  readonly signal: AbortSignal;
  /** Job poll interval (default 1000 ms). */
  readonly pollMs?: number;
  /**
   * Run the schedules' ticks with these dependencies (absent: this worker takes no tick). `everySeconds`: queue a
   * tick every so many seconds from this worker instead of the once-a-minute crontab (TOCSIN_SCHEDULE_TICK_SECONDS).
   */
  readonly schedules?: { readonly deps: SchedulerDeps; readonly everySeconds?: number };
  onEvent?(message: string): void;
}

export interface WorkerSummary {
  readonly id: string;
  readonly blocksDone: number;
  readonly blocksReleased: number;
  readonly attempts: number;
}

interface RunningBlock {
  readonly scanId: number;
  readonly abort: AbortController;
}

/** Runs a worker until `signal` (or, with `once`, until no work is left). */
export async function runWorker(o: WorkerOptions): Promise<WorkerSummary> {
  const db = o.database.db;
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const say = (m: string): void => o.onEvent?.(m);
  const leaseMs = o.leaseSeconds * 1000;
  const store = createScanStore(db, { kbRevision: loadExchangeKb().version });
  const kit = defaultKit();
  const running = new Set<RunningBlock>();
  const rates = new Map<number, SharedRate>();
  let lastBeatOk = performance.now();
  let blocksDone = 0;
  let blocksReleased = 0;
  let attempts = 0;
  const fenced = (): boolean => performance.now() - lastBeatOk > (leaseMs * 2) / 3;

  await registerWorker(db, { id, host: hostname(), pid: process.pid, concurrency: o.concurrency });
  const queue = await openJobQueue(o.database.url, { onProblem: (m) => say(`job queue: ${m}`) });

  const runBlock = async (job: BlockJob, signal: AbortSignal): Promise<void> => {
    // A fenced worker (its heartbeat is late: a stalled event loop, a slow database) would claim a block only to give
    // it back at its first connection, and the job would go into the queue's back-off (measured under load 37: most
    // blocks bounced that way). Wait for the next beat first, at most one lease; still late, leave it to others.
    for (let waited = 0; fenced() && waited < leaseMs && !signal.aborted; waited += 100) await systemClock.sleep(100);
    if (fenced()) throw new Error(`block ${job.blockNo} of scan ${job.scanId} left for another worker: this worker's heartbeat is late`);
    const claim = await claimBlock(db, job.scanId, job.blockNo, id, o.leaseSeconds);
    if (claim.kind === 'settled') return;
    if (claim.kind === 'busy') throw new Error(`block ${job.blockNo} of scan ${job.scanId} is run by ${claim.by}; retried later`);
    const ac = new AbortController();
    const follow = (): void => ac.abort(signal.reason);
    if (signal.aborted) follow();
    else signal.addEventListener('abort', follow, { once: true });
    const me: RunningBlock = { scanId: job.scanId, abort: ac };
    running.add(me);
    try {
      const stored = await store.getScan(String(job.scanId));
      if (stored === null) return;
      const plan = planFromStored(stored.id, stored.options, stored.targets);
      const done = await doneKeysInSpan(db, job.scanId, claim.block.firstIp, claim.block.lastIp);
      let rate = rates.get(job.scanId);
      if (rate === undefined && plan.rate > 0) {
        // Batches of ~50 ms of the rate: few round trips, little left unused when a block ends.
        rate = new SharedRate((n) => reserveSlots(db, job.scanId, n), Math.max(1, Math.min(64, Math.ceil(plan.rate * 0.05))));
        rates.set(job.scanId, rate);
      }
      // Per network: local to this block, and it holds across workers because the block has whole networks.
      const perNetwork = createRateLimiter({ perSecond: 0, perNetworkPerSecond: plan.ratePerNetwork });
      const shared = rate;
      const limiter: ConnectionLimiter = {
        acquire: async (ip, s) => {
          if (fenced()) {
            ac.abort('lease lost: heartbeat not refreshed');
            throw new Error('lease lost');
          }
          if (perNetwork !== null) await perNetwork.acquire(ip, s);
          if (shared !== undefined) await shared.acquire(s);
        },
      };
      const batcher = new Batcher({
        maxBatch: 128,
        maxAgeMs: 250,
        maxInFlight: 2,
        sink: (batch: readonly AttemptResult[]) => store.recordBatch(String(job.scanId), batch),
      });
      const base = engineOptionsFor({ ...plan, targets: claim.block.targets, rate: 0, ratePerNetwork: 0 }, {
        done,
        signal: ac.signal,
        onResult: (r) => batcher.push(r),
        onWarning: (m) => say(`scan ${job.scanId}: ${m}`),
      }, kit);
      const jobs = claim.block.hosts * plan.ports.length;
      let stats: EngineStats;
      try {
        stats = await runScan({ ...base, concurrency: Math.max(1, Math.min(plan.concurrency, jobs)), limiter });
      } finally {
        await batcher.close();
      }
      attempts += stats.attempted;
      if (ac.signal.aborted) {
        await releaseBlock(db, job.scanId, job.blockNo, id, claim.attempt);
        blocksReleased++;
        throw new Error(`block ${job.blockNo} of scan ${job.scanId} given back (${String(ac.signal.reason ?? 'stopped')})`);
      }
      const f = await finishBlock(db, job.scanId, job.blockNo, id, claim.attempt);
      if (!f.lost) blocksDone++;
      if (f.scanFinished) say(`scan ${job.scanId} finished`);
    } catch (e) {
      await releaseBlock(db, job.scanId, job.blockNo, id, claim.attempt).catch(() => undefined);
      throw e;
    } finally {
      signal.removeEventListener('abort', follow);
      running.delete(me);
    }
  };

  const schedules = o.schedules;
  const tickEveryMs = schedules?.everySeconds === undefined ? null : schedules.everySeconds * 1000;
  const runTick = async (signal: AbortSignal): Promise<void> => {
    if (schedules === undefined) return;
    const deps = schedules.deps;
    const stop = deps.signal === undefined ? signal : AbortSignal.any([signal, deps.signal]);
    const results = await runScheduleTick(o.database, { ...deps, signal: stop }, new Date());
    for (const r of results) {
      // Quiet minutes stay quiet: only ticks that did (or failed to do) something are logged.
      if (r.status === 'nothing-due' || r.status === 'busy' || r.status === 'disabled') continue;
      say(`schedule ${r.schedule}: ${r.status}${r.runId === null ? '' : ` (run ${r.runId})`}, ${r.targets.length} target(s)` +
        `${r.scanId === null ? '' : `, scan ${r.scanId}`}, ${r.closed} closed, ${r.sent} sent${r.error === null ? '' : `: ${r.error}`}`);
    }
  };

  let runner: QueueRunner | null = null;
  try {
    runner = await runJobQueue({
      connectionString: o.database.url,
      concurrency: o.concurrency,
      pollIntervalMs: o.pollMs ?? 1000,
      runBlock,
      ...(schedules === undefined ? {} : { scheduleTick: { run: runTick, cron: tickEveryMs === null } }),
      onProblem: (m) => say(`job queue: ${m}`),
    });
    await setQueueWorkerIds(db, id, runner.queueWorkerIds);
    // The lease counts from now: starting (migrations, the queue's schema) may have taken longer than it.
    await beat(db, id, []);
    lastBeatOk = performance.now();
    say(`worker ${id} started (${o.concurrency} block(s) at once, lease ${o.leaseSeconds} s, ` +
      `${schedules === undefined ? 'no schedules' : tickEveryMs === null ? 'schedules every minute' : `schedules every ${tickEveryMs / 1000} s`})`);
    const r = runner;
    const tickMs = Math.max(100, Math.floor(leaseMs / 6));
    const stop = new Promise<void>((resolve) => {
      if (o.signal.aborted) resolve();
      else o.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    let idleTicks = 0;
    // At the first tick: blocks given back before this worker started are queued again at once.
    let lastRequeue = -Infinity;
    let lastTickQueued = -Infinity;
    while (!o.signal.aborted) {
      const outcome = await Promise.race([stop.then(() => 'stop' as const), r.done.then(() => 'ended' as const, () => 'ended' as const), systemClock.sleep(tickMs).then(() => 'tick' as const)]);
      if (outcome !== 'tick') break;
      const sent = performance.now();
      try {
        const b = await beat(db, id, [...new Set([...running].map((x) => x.scanId))]);
        if (!b.alive) {
          // Declared dead (we were cut off longer than the lease): our blocks belong to others now.
          for (const x of running) x.abort.abort('lease lost: declared dead by another worker');
          say(`worker ${id}: lease lost; blocks given up, registering again`);
          await registerWorker(db, { id, host: hostname(), pid: process.pid, concurrency: o.concurrency });
          await setQueueWorkerIds(db, id, r.queueWorkerIds);
        }
        lastBeatOk = sent;
        for (const c of b.cancelled) {
          await cancelDistributed(db, c.scanId, c.by);
          for (const x of running) if (x.scanId === c.scanId) x.abort.abort(`cancelled by ${c.by}`);
          say(`scan ${c.scanId} cancelled by ${c.by}`);
        }
        const dead = await deadWorkers(db, o.leaseSeconds);
        if (dead.length > 0) {
          await queue.forceUnlock(dead.flatMap((d) => d.queueWorkerIds));
          const n = await reapWorkers(db, dead.map((d) => d.id), o.leaseSeconds);
          say(`reaped ${dead.length} dead worker(s); ${n} block(s) queued again`);
        }
        // Given-back blocks get their job again now (not after the queue's back-off), and at least once a lease.
        if (dead.length > 0 || performance.now() - lastRequeue > leaseMs) {
          lastRequeue = performance.now();
          const again = await requeuedBlocks(db);
          for (const scanId of new Set(again.map((x) => x.scanId))) {
            await queue.addBlockJobs(scanId, again.filter((x) => x.scanId === scanId).map((x) => x.blockNo));
          }
        }
        if (tickEveryMs !== null && performance.now() - lastTickQueued >= tickEveryMs) {
          lastTickQueued = performance.now();
          await queue.addScheduleTick();
        }
        if (o.once) {
          idleTicks = r.running === 0 && (await openBlockCount(db)) === 0 ? idleTicks + 1 : 0;
          // Two quiet ticks in a row: a block released a moment ago has had time to be queued again.
          if (idleTicks >= 2) break;
        }
      } catch (e) {
        say(`worker ${id}: heartbeat failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (fenced()) for (const x of running) x.abort.abort('lease lost: heartbeat not refreshed');
    }
  } finally {
    await runner?.stop().catch(() => undefined);
    await unregisterWorker(db, id).catch(() => undefined);
    await queue.release().catch(() => undefined);
  }
  return { id, blocksDone, blocksReleased, attempts };
}
