/**
 * The scan engine: a fixed pool of `concurrency` async loops pulling (target, port) jobs from one lazy
 * iterator, so memory stays bounded whatever the size of the target list (a /8 is never materialised).
 *
 * Per job:
 *   excluded address → reported as 'excluded', never contacted (no connection, no DNS, no token taken);
 *   already done (resume) → skipped silently;
 *   otherwise one host session (the client owns every deadline and byte cap; each connection it opens
 *   takes a rate-limiter token),
 *   then the probe plan loop: `nextProbes(answered, sent)` until it returns nothing new, each probe
 *   sent once, the first network failure before anything answered ends the attempt (a tarpit or a
 *   closed port costs one deadline, not one per probe), and the whole attempt is bounded by the host
 *   budget. Detectors → fingerprint → knowledge base → ScanRecord.
 *
 * Port modes (see port-spec.ts): 'tls', 'http', or 'auto' = TLS first, then plain HTTP on the same port
 * if the peer did not speak TLS.
 *
 * Rate limits count connections, not hosts: the limiter is handed to the session as `beforeConnect`,
 * so every socket it opens (first connection, reconnect after `Connection: close`, redirect hop, the
 * plain-HTTP try of an 'auto' port, every retry) takes a token.
 *
 * A new attempt starts only while this thread's event loop keeps up, and within a congestion window
 * (admission.ts) that shrinks on the signs of a peer queueing us: a TLS handshake timeout after
 * connect, or a connect timeout into a network that accepted connections recently (a listener whose
 * accept queue is full drops SYNs silently; silent dead address space does not shrink the window).
 * The probe client says what failed and in which phase ({kind, phase}); no message text is read.
 * Failures congestion explains are tried again after an exponential backoff (RetryQueue): a connect
 * timeout or a TLS handshake timeout up to MAX_CONNECT_TRIES / MAX_TLS_TRIES times, a TLS-phase reset
 * once more. An attempt whose connect still went unanswered is reported with `unanswered: true` (stored
 * so that a resume tries it again), every retried one with its `tries`. (A TLS handshake that still
 * times out is a final 'timeout': the host accepted the connection, and tarpits do exactly that.)
 *
 * Results are handed to `onResult`; if it returns a promise the loop waits for it (back-pressure from
 * storage/output to the network). Stopping: abort the signal; no new job starts, open sessions are
 * closed, and unfinished attempts are NOT reported (a resume does them again).
 */
import type { AttemptOutcome, AttemptResult } from './ports.js';
import { attemptKey } from './ports.js';
import type { Fact, ProbeRequest, ProbeResponse } from '../products/sdk.js';
import type { HostSession, NetLimits, ProbeFailure, SessionOptions, TlsTiming } from '../core/contracts/probe.js';
import type { PortSpec } from './port-spec.js';
import type { DetectionResult, FingerprintLike, KitProduct, ScanKit } from './kit.js';
import { assess } from './assess.js';
import { AdmissionGate, CongestionWindow, RetryQueue } from './admission.js';
import { systemClock, type Clock } from './rate-limit.js';
import { networkKey } from '../core/ip.js';

/** One address to scan, with the hostname it was given as (sent as SNI and Host), if any. */
export interface ScanTarget {
  readonly ip: string;
  readonly hostname: string | null;
}

/** New-connection pacing (overall and per network). Resolves when a connection to `ip` may be opened. */
export interface ConnectionLimiter {
  acquire(ip: string, signal?: AbortSignal): Promise<void>;
}

export interface EngineOptions {
  readonly targets: Iterable<ScanTarget> | AsyncIterable<ScanTarget>;
  readonly ports: readonly PortSpec[];
  /** Jobs in flight at once (each is at most one open connection). */
  readonly concurrency: number;
  readonly limits: NetLimits;
  readonly kit: ScanKit;
  /** True for an address that must never be contacted. */
  readonly isExcluded?: (ip: string) => boolean;
  /** attemptKey(ip, port) of attempts already stored (resume). */
  readonly done?: ReadonlySet<string>;
  readonly limiter?: ConnectionLimiter;
  readonly signal?: AbortSignal;
  /** Deterministic sharding for worker threads: only targets whose position % count === index. */
  readonly shard?: { readonly index: number; readonly count: number };
  /** Injected clock (tests). */
  readonly now?: () => Date;
  /** Injected clock for retry backoff and the congestion window (tests); default: the real clock. */
  readonly clock?: Clock;
  /** Event-loop lag above which no new attempt starts (see admission.ts); 0 disables the gate. Default 50. */
  readonly maxLoopLagMs?: number;
  onResult(result: AttemptResult): void | Promise<void>;
  /** Something went wrong that is our bug, not the host's (e.g. a detector threw); the scan continues. */
  onWarning?(message: string): void;
}

export interface EngineStats {
  attempted: number;
  answered: number;
  /** Answered services a product plugin claimed (its own id names the record), e.g. on-premises Exchange. */
  exchange: number;
  excluded: number;
  skipped: number;
  /** Attempts reported as a timeout (any phase), after their retries. */
  timedOut: number;
  /** Attempts tried more than once. */
  retried: number;
  /** Attempts whose connect went unanswered even after their retries (a resume tries them again). */
  unanswered: number;
}

export function emptyStats(): EngineStats {
  return { attempted: 0, answered: 0, exchange: 0, excluded: 0, skipped: 0, timedOut: 0, retried: 0, unanswered: 0 };
}

interface Job {
  readonly target: ScanTarget;
  readonly port: PortSpec;
  /** Tries already made (0 for a fresh job). */
  readonly tries: number;
}

/** What one try produced: the result to report, and the failure that ended it (null if it answered). */
interface Tried {
  readonly result: AttemptResult;
  readonly failure: ProbeFailure | null;
  /** Connect and handshake times of its first TLS connection, when one completed. */
  readonly timing?: TlsTiming | null;
}

/** Failures after which 'auto' mode retries the same port without TLS. */
const PLAIN_RETRY: ReadonlySet<string> = new Set(['tls-error', 'protocol-error', 'reset']);
/** Safety net against a plan that never converges (each round must send something new anyway). */
const MAX_PLAN_ROUNDS = 8;
/** At most this many attempts wait for a retry at once (each is a few dozen bytes); beyond, they end as they are. */
const MAX_RETRIES = 100_000;
/** Congestion window at the start (slow start grows it to `concurrency` within a few hundred attempts). */
const INITIAL_WINDOW = 128;
/** A handshake that waits longer than tlsTimeoutMs / QUEUE_FRACTION beyond its round trips was queued. */
const QUEUE_FRACTION = 6;
/** Tries for an attempt whose connect went unanswered (SYN dropped: full accept queue, loss, filter). */
export const MAX_CONNECT_TRIES = 3;
/** Tries for an attempt whose TLS handshake timed out after connect (a peer queueing handshakes, or a tarpit). */
export const MAX_TLS_TRIES = 3;
/** Tries for an attempt whose TLS handshake was reset (an overloaded peer drops what it cannot serve). */
const MAX_TLS_RESET_TRIES = 2;
/** Backoff before the first retry; doubled for each further one (times a spread in [1, 2)). */
export const RETRY_BACKOFF_MS = 1000;
/** A network (/24 or /64) that accepted a connection this recently is alive: its connect timeouts are congestion. */
const ALIVE_MS = 30_000;

/** No TCP connection within the connect deadline: nothing came back from the address. */
function isConnectTimeout(f: ProbeFailure | null): boolean {
  return f !== null && f.kind === 'timeout' && f.phase === 'connect';
}

/** How many tries a failure deserves in all (1 = no retry). */
function triesFor(f: ProbeFailure | null): number {
  if (f === null) return 1;
  if (isConnectTimeout(f)) return MAX_CONNECT_TRIES;
  // A peer queueing handshakes times them out; an overloaded one resets what it cannot serve (a peer
  // that resets every handshake costs one fast extra try).
  if (f.phase === 'tls' && f.kind === 'timeout') return MAX_TLS_TRIES;
  if (f.phase === 'tls' && f.kind === 'tls-error' && f.code === 'ECONNRESET') return MAX_TLS_RESET_TRIES;
  return 1;
}

/**
 * Networks that accepted a TCP connection recently. A connect timeout into one of them is a sign of
 * congestion (its listener or a middlebox drops our SYNs); into a network that never answered it is
 * dead or filtered address space, normal on the internet, and must not shrink the window. Bounded.
 */
class AliveNetworks {
  private readonly seen = new Map<number | string, number>();
  constructor(private readonly clock: Clock) {}

  connected(ip: string): void {
    const k = networkKey(ip);
    if (k === null) return;
    if (this.seen.size >= 65_536 && !this.seen.has(k)) this.sweep();
    this.seen.set(k, this.clock.now());
  }

  recentlyAlive(ip: string): boolean {
    const k = networkKey(ip);
    const t = k === null ? undefined : this.seen.get(k);
    return t !== undefined && this.clock.now() - t <= ALIVE_MS;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [k, t] of this.seen) if (now - t > ALIVE_MS) this.seen.delete(k);
    if (this.seen.size >= 65_536) this.seen.clear();
  }
}

export async function runScan(options: EngineOptions): Promise<EngineStats> {
  const stats = emptyStats();
  const now = options.now ?? (() => new Date());
  const clock = options.clock ?? systemClock;
  // Our own signal: the caller's abort, or the first failure of onResult (storage down, disk full),
  // stops every loop instead of leaving the others running with nowhere to put their results.
  const stop = new AbortController();
  const forward = (): void => stop.abort();
  if (options.signal?.aborted === true) stop.abort();
  options.signal?.addEventListener('abort', forward, { once: true });
  const o: EngineOptions = { ...options, signal: stop.signal };
  const jobs = jobSource(o, stats, now);
  // One abort listener for the whole scan (not one per session: thousands would be in flight).
  const open = new Set<HostSession>();
  const closeAll = (): void => {
    for (const s of open) s.close();
  };
  stop.signal.addEventListener('abort', closeAll, { once: true });
  let failure: { error: unknown } | null = null;
  const gate = options.maxLoopLagMs === 0 ? null : new AdmissionGate({ maxLagMs: options.maxLoopLagMs ?? 50 }).start();
  const n = Math.max(1, Math.floor(o.concurrency));
  // Never below an eighth of the configured concurrency (at least 32): tarpits also time out TLS.
  // Handshakes waiting more than a sixth of the TLS deadline (500 ms by default) beyond their round trips
  // mean a queue at the peer (or in this thread): the window stops growing into it (admission.ts).
  const cwnd = new CongestionWindow(n, Math.min(n, Math.max(32, Math.floor(n / 8))), o.limits.tlsTimeoutMs, () => clock.now(), INITIAL_WINDOW,
    Math.floor(o.limits.tlsTimeoutMs / QUEUE_FRACTION));
  // Attempts that failed the way congestion makes them fail come back after a backoff, ahead of fresh
  // jobs: a live server behind a momentarily saturated front end must not be recorded as a timeout.
  const retries = new RetryQueue<Job>(clock, RETRY_BACKOFF_MS, MAX_RETRIES);
  const alive = new AliveNetworks(clock);
  const productIds: ReadonlySet<string> = new Set(o.kit.products.map((p) => p.id));
  stop.signal.addEventListener('abort', () => {
    gate?.stop();
    cwnd.stop();
    retries.stop();
  }, { once: true });
  let sourceDone = false;
  /** Jobs taken and not yet reported or re-queued (each may still add a retry). */
  let held = 0;
  const nextJob = async (): Promise<Job | null> => {
    for (;;) {
      if (stop.signal.aborted) return null;
      const due = retries.popDue();
      if (due !== undefined) return due;
      if (!sourceDone) {
        const next = await jobs.next();
        if (next.done !== true) return next.value;
        sourceDone = true;
        continue;
      }
      if (held === 0 && retries.size === 0) {
        retries.finish();
        return null;
      }
      return retries.take();
    }
  };
  // Loops are started as the congestion window grows, not all `concurrency` of them at once: a loop
  // beyond the window only holds a job and waits for a slot, and 2,048 such loops cost ~14% of a scan's CPU
  // on the all-Exchange lab against 256 (the same window of 256 either way; bench/README.md stop 18).
  const loops: Promise<void>[] = [];
  const grow = (): void => {
    while (loops.length < n && loops.length < cwnd.limit && !stop.signal.aborted) loops.push(loop());
  };
  const loop = async (): Promise<void> => {
      try {
        for (;;) {
          const job = await nextJob();
          if (job === null || stop.signal.aborted) return;
          held++;
          try {
            await gate?.admit();
            await cwnd.acquire();
            let tried: Tried | null;
            try {
              if (stop.signal.aborted) return;
              tried = await attempt(o, job, now, open);
            } finally {
              cwnd.release();
            }
            if (tried === null) continue; // aborted mid-attempt: not reported, resume redoes it
            const { result, failure: f, timing } = tried;
            if (timing !== undefined && timing !== null) cwnd.onHandshake(timing.connectMs, timing.handshakeMs);
            const ip = job.target.ip;
            if (f === null || f.phase !== 'connect') alive.connected(ip); // TCP connected: the network lives
            if ((f?.kind === 'timeout' && f.phase === 'tls') || (isConnectTimeout(f) && alive.recentlyAlive(ip))) cwnd.onCongestion();
            else {
              cwnd.onCompleted();
              grow();
            }
            const tries = job.tries + 1;
            if (tries < triesFor(f) && !stop.signal.aborted && retries.push({ ...job, tries }, tries)) continue;
            const unanswered = isConnectTimeout(f);
            stats.attempted++;
            if (result.outcome === 'answered') stats.answered++;
            const named = result.record?.product;
            if (named !== undefined && named !== null && productIds.has(named)) stats.exchange++;
            if (result.outcome === 'timeout') stats.timedOut++;
            if (tries > 1) stats.retried++;
            if (unanswered) stats.unanswered++;
            await o.onResult(tries > 1 || unanswered ? { ...result, tries, unanswered } : result);
          } finally {
            held--;
            if (sourceDone && held === 0 && retries.size === 0) retries.finish();
          }
        }
      } catch (e) {
        failure ??= { error: e };
        stop.abort();
      }
  };
  grow();
  try {
    // The list grows while loops run; a loop is only added by a running one, so when the last one listed
    // has ended none is left to add another. (A loop never rejects: it records its failure and stops the scan.)
    for (let i = 0; i < loops.length; i++) await loops[i];
  } finally {
    gate?.stop();
    cwnd.stop();
    retries.stop();
    options.signal?.removeEventListener('abort', forward);
  }
  if (failure !== null) throw (failure as { error: unknown }).error;
  return stats;
}

/**
 * Lazy (target, port) jobs. Excluded addresses are reported here, without taking a pool slot.
 * Async generators queue concurrent next() calls, so the pool loops can share one.
 */
async function* jobSource(o: EngineOptions, stats: EngineStats, now: () => Date): AsyncGenerator<Job> {
  let index = -1;
  for await (const target of o.targets) {
    index++;
    if (o.shard !== undefined && index % o.shard.count !== o.shard.index) continue;
    if (o.signal?.aborted) return;
    const excluded = o.isExcluded?.(target.ip) === true;
    for (const port of o.ports) {
      if (o.done?.has(attemptKey(target.ip, port.port)) === true) {
        stats.skipped++;
        continue;
      }
      if (excluded) {
        stats.excluded++;
        await o.onResult(failure(target, port.port, 'excluded', 'in an exclusion list; not contacted', null, now()));
        continue;
      }
      yield { target, port, tries: 0 };
    }
  }
}

function failure(
  target: ScanTarget, port: number, outcome: AttemptOutcome, detail: string,
  tlsCert: HostSession['tlsCert'], at: Date,
): AttemptResult {
  return {
    ip: target.ip, port, hostname: target.hostname, outcome, detail, record: null, facts: [],
    detectorRevisions: {}, tlsCert, attemptedAt: at.toISOString(),
  };
}

async function attempt(o: EngineOptions, job: Job, now: () => Date, open: Set<HostSession>): Promise<Tried | null> {
  const modes = job.port.mode === 'auto' ? [true, false] : [job.port.mode === 'tls'];
  let last: Tried | null = null;
  for (const tls of modes) {
    last = await attemptWith(o, job, tls, now, open);
    if (last === null || last.result.outcome === 'answered' || !PLAIN_RETRY.has(last.result.outcome)) return last;
  }
  return last;
}

async function attemptWith(o: EngineOptions, job: Job, tls: boolean, now: () => Date, open: Set<HostSession>): Promise<Tried | null> {
  const { target } = job;
  const port = job.port.port;
  if (o.signal?.aborted) return null;
  const startedAt = now();
  // Every connection the session opens takes a token (not only the first); the wait is our pacing,
  // not the host's slowness, so it extends the host budget here as it does in the session.
  let waited = 0;
  const limiter = o.limiter;
  const signal = o.signal;
  const sessionOptions: SessionOptions | undefined = limiter === undefined ? undefined : {
    beforeConnect: async () => {
      const t = Date.now();
      await limiter.acquire(target.ip, signal);
      waited += Date.now() - t;
    },
  };
  let session: HostSession;
  try {
    session = await o.kit.openSession({ ip: target.ip, port, tls, hostname: target.hostname }, o.limits, sessionOptions);
  } catch (e) {
    o.onWarning?.(`probe client failed to open ${target.ip}:${port}: ${errorText(e)}`);
    return { result: failure(target, port, 'unreachable', `client error: ${errorText(e)}`, null, startedAt), failure: null };
  }
  open.add(session);
  const answered = new Map<string, ProbeResponse>();
  const sent = new Set<string>();
  let firstFailure: ProbeFailure | null = null;
  let budgetNote: string | null = null;
  const deadline = startedAt.getTime() + o.limits.hostBudgetMs;
  try {
    plan: for (let round = 0; round < MAX_PLAN_ROUNDS; round++) {
      const probes = nextProbes(o.kit.products, answered, sent);
      if (probes.length === 0) break;
      for (const probe of probes) {
        if (o.signal?.aborted) return null;
        if (Date.now() >= deadline + waited) {
          budgetNote = `host budget of ${o.limits.hostBudgetMs} ms spent; ${probe.id} and later probes not sent`;
          break plan;
        }
        sent.add(probe.id);
        const out = await session.request(probe);
        if (o.signal?.aborted) return null;
        if (out.kind === 'ok') {
          answered.set(probe.id, out.response);
        } else {
          firstFailure ??= out;
          // Nothing answered yet: the port does not speak HTTP(S) to us; more probes would only
          // multiply the deadlines a tarpit makes us wait.
          if (answered.size === 0) break plan;
          // A timeout after answers means the host turned slow: stop spending its budget.
          if (out.kind === 'timeout') break plan;
        }
      }
    }
  } catch (e) {
    o.onWarning?.(`probe plan failed for ${target.ip}:${port}: ${errorText(e)}`);
    if (answered.size === 0) return { result: failure(target, port, 'protocol-error', `internal error: ${errorText(e)}`, safeCert(session), startedAt), failure: null };
  } finally {
    open.delete(session);
    session.close();
  }

  const tlsCert = safeCert(session);
  const timing = safeTiming(session);
  if (answered.size === 0) {
    const kind = firstFailure?.kind ?? 'protocol-error';
    const detail = firstFailure?.detail ?? budgetNote ?? 'no probe answered';
    return { result: failure(target, port, kind, detail, tlsCert, startedAt), failure: firstFailure, timing };
  }
  try {
    // One product (the common case): its detectors and fingerprint straight, no merging.
    const several = o.kit.products.length > 1 ? detectAll(o.kit.products, answered) : null;
    const product = several?.product ?? onlyProduct(o.kit);
    const { facts, revisions, errors } = several ?? product.runDetectors(answered);
    const fp = several?.fp ?? product.fingerprint(facts);
    for (const err of errors ?? []) o.onWarning?.(`detector ${err.detector} failed on ${target.ip}:${port}: ${err.message}`);
    const record = assess({ ip: target.ip, port, hostname: target.hostname, tls }, answered, facts, fp, product, startedAt.toISOString());
    const notes = budgetNote === null ? record.notes : [...record.notes, budgetNote];
    return {
      result: {
        ip: target.ip, port, hostname: target.hostname, outcome: 'answered', detail: null,
        record: notes === record.notes ? record : { ...record, notes },
        facts: facts as Fact[], detectorRevisions: revisions, tlsCert, attemptedAt: startedAt.toISOString(),
        responses: [...answered.values()],
      },
      failure: null,
      timing,
    };
  } catch (e) {
    // A detector or the KB threw on hostile input: our bug. Keep the scan going, keep the host visible.
    o.onWarning?.(`assessment failed for ${target.ip}:${port}: ${errorText(e)}`);
    return { result: failure(target, port, 'protocol-error', `internal error while assessing: ${errorText(e)}`, tlsCert, startedAt), failure: null };
  }
}

/**
 * The next probes of every product's plan, not yet sent, in product order. With one product (the common
 * case) this is exactly that product's plan: the traffic does not change when the registry has one entry.
 */
function nextProbes(products: readonly KitProduct[], answered: ReadonlyMap<string, ProbeResponse>, sent: ReadonlySet<string>): readonly ProbeRequest[] {
  const only = products.length === 1 ? products[0] : undefined;
  if (only !== undefined) return only.nextProbes(answered, sent).filter((p) => !sent.has(p.id));
  const out: ProbeRequest[] = [];
  for (const product of products) for (const p of product.nextProbes(answered, sent)) if (!sent.has(p.id) && !out.includes(p)) out.push(p);
  return out;
}

interface Detected extends DetectionResult {
  /** The product whose fingerprint names the record. */
  readonly product: KitProduct;
  readonly fp: FingerprintLike;
}

function onlyProduct(kit: ScanKit): KitProduct {
  const p = kit.products[0];
  if (p === undefined) throw new Error('the scan kit has no product');
  return p;
}

/**
 * Every product's detectors and fingerprint over the answered probes. The record is named by the first
 * product (registry order) whose fingerprint claims the service with its own id; if none does, by the
 * first that names something (e.g. a cloud front end), else by the first product's conclusion. Facts and
 * revisions of all products are kept (stored with the observation).
 */
function detectAll(products: readonly KitProduct[], answered: ReadonlyMap<string, ProbeResponse>): Detected {
  const facts: Fact[] = [];
  const revisions: Record<string, number> = {};
  const errors: Array<{ readonly detector: string; readonly message: string }> = [];
  let chosen: { product: KitProduct; fp: FingerprintLike; rank: number } | null = null;
  for (const product of products) {
    const run = product.runDetectors(answered);
    facts.push(...run.facts);
    Object.assign(revisions, run.revisions);
    if (run.errors !== undefined) errors.push(...run.errors);
    const fp = product.fingerprint(run.facts);
    // 0: claims the service; 1: names something else; 2: names nothing.
    const rank = fp.product === product.id ? 0 : fp.product !== null ? 1 : 2;
    if (chosen === null || rank < chosen.rank) chosen = { product, fp, rank };
  }
  if (chosen === null) throw new Error('the scan kit has no product');
  return { facts, revisions, errors, product: chosen.product, fp: chosen.fp };
}

function safeTiming(s: HostSession): TlsTiming | null {
  try {
    return s.tlsTiming ?? null;
  } catch {
    return null;
  }
}

function safeCert(s: HostSession): HostSession['tlsCert'] {
  try {
    return s.tlsCert;
  } catch {
    return null;
  }
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).slice(0, 200);
}
