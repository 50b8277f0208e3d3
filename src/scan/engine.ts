/**
 * The scan engine: a fixed pool of `concurrency` async loops pulling (target, port) jobs from one lazy
 * iterator, so memory stays bounded whatever the size of the target list (a /8 is never materialised).
 *
 * Per job:
 *   excluded address → reported as 'excluded', never contacted (no connection, no DNS, no token taken);
 *   already done (resume) → skipped silently;
 *   otherwise one rate-limiter token, one host session (the client owns every deadline and byte cap),
 *   then the probe plan loop: `nextProbes(answered, sent)` until it returns nothing new, each probe
 *   sent once, the first network failure before anything answered ends the attempt (a tarpit or a
 *   closed port costs one deadline, not one per probe), and the whole attempt is bounded by the host
 *   budget. Detectors → fingerprint → knowledge base → ScanRecord.
 *
 * Port modes (see port-spec.ts): 'tls', 'http', or 'auto' = TLS first, then plain HTTP on the same port
 * if the peer did not speak TLS.
 *
 * A new attempt starts only while this thread's event loop keeps up, and within a congestion window
 * that shrinks when TLS handshakes time out after connect (admission.ts): past what our CPU or the
 * peers' sustain, more concurrency only turns live hosts into timeouts. Attempts that ended in a TLS
 * timeout or TLS-phase reset are tried once more after the first pass (then reported as they end).
 *
 * Results are handed to `onResult`; if it returns a promise the loop waits for it (back-pressure from
 * storage/output to the network). Stopping: abort the signal; no new job starts, open sessions are
 * closed, and unfinished attempts are NOT reported (a resume does them again).
 */
import type { AttemptOutcome, AttemptResult } from './store.js';
import { attemptKey } from './store.js';
import type { Fact, ProbeResponse } from '../detectors/sdk.js';
import type { HostSession, NetLimits, ProbeOutcome } from '../platform/net/types.js';
import type { PortSpec } from './port-spec.js';
import type { ScanKit } from './kit.js';
import { assess, EXCHANGE } from './assess.js';
import { AdmissionGate, CongestionWindow } from './admission.js';

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
  /** Event-loop lag above which no new attempt starts (see admission.ts); 0 disables the gate. Default 50. */
  readonly maxLoopLagMs?: number;
  onResult(result: AttemptResult): void | Promise<void>;
  /** Something went wrong that is our bug, not the host's (e.g. a detector threw); the scan continues. */
  onWarning?(message: string): void;
}

export interface EngineStats {
  attempted: number;
  answered: number;
  exchange: number;
  excluded: number;
  skipped: number;
}

interface Job {
  readonly target: ScanTarget;
  readonly port: PortSpec;
}

/** Failures after which 'auto' mode retries the same port without TLS. */
const PLAIN_RETRY: ReadonlySet<string> = new Set(['tls-error', 'protocol-error', 'reset']);
/** Safety net against a plan that never converges (each round must send something new anyway). */
const MAX_PLAN_ROUNDS = 8;
/** At most this many congestion timeouts are kept for the second pass (each is a few dozen bytes). */
const MAX_RETRIES = 100_000;
/** Congestion window at the start (slow start grows it to `concurrency` within a few hundred attempts). */
const INITIAL_WINDOW = 128;

/**
 * A TLS handshake that timed out after the TCP connect succeeded: the sign of a peer queueing our
 * handshakes (see CongestionWindow). The probe client words it "TLS handshake timeout after N ms";
 * connect timeouts (dead addresses, normal on the internet) are not congestion.
 */
function isCongestion(r: AttemptResult): boolean {
  return r.outcome === 'timeout' && /tls/i.test(r.detail ?? '');
}

/**
 * Worth one more try after the congestion has passed: congestion timeouts, and connections reset
 * during the TLS handshake (an overloaded peer drops what it cannot serve; a peer that resets every
 * handshake costs one fast extra attempt).
 */
function isRetryable(r: AttemptResult): boolean {
  return isCongestion(r) || (r.outcome === 'tls-error' && /ECONNRESET/.test(r.detail ?? ''));
}

export async function runScan(options: EngineOptions): Promise<EngineStats> {
  const stats: EngineStats = { attempted: 0, answered: 0, exchange: 0, excluded: 0, skipped: 0 };
  const now = options.now ?? (() => new Date());
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
  stop.signal.addEventListener('abort', () => gate?.stop(), { once: true });
  const n = Math.max(1, Math.floor(o.concurrency));
  // Never below an eighth of the configured concurrency (at least 32): tarpits also time out TLS.
  const cwnd = new CongestionWindow(n, Math.min(n, Math.max(32, Math.floor(n / 8))), o.limits.tlsTimeoutMs, undefined, INITIAL_WINDOW);
  stop.signal.addEventListener('abort', () => cwnd.stop(), { once: true });
  // Attempts whose TLS handshake timed out while the window was being cut are tried once more at the
  // end, after the congestion has passed: a live server behind a momentarily saturated front end must
  // not be recorded as a timeout. A tarpit costs one more deadline; the list is bounded.
  const retry: Job[] = [];
  const pass = (source: AsyncIterator<Job>, final: boolean): Promise<void>[] => {
    const loops: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      loops.push((async () => {
        try {
          for (;;) {
            if (stop.signal.aborted) return;
            const next = await source.next();
            if (next.done === true || stop.signal.aborted) return;
            await gate?.admit();
            await cwnd.acquire();
            let result: AttemptResult | null;
            try {
              if (stop.signal.aborted) return;
              result = await attempt(o, next.value, now, open);
            } finally {
              cwnd.release();
            }
            if (result === null) continue; // aborted mid-attempt: not reported, resume redoes it
            if (isCongestion(result)) cwnd.onCongestion();
            else cwnd.onCompleted();
            if (!final && isRetryable(result) && retry.length < MAX_RETRIES) {
              retry.push(next.value);
              continue;
            }
            stats.attempted++;
            if (result.outcome === 'answered') stats.answered++;
            if (result.record?.product === EXCHANGE) stats.exchange++;
            await o.onResult(result);
          }
        } catch (e) {
          failure ??= { error: e };
          stop.abort();
        }
      })());
    }
    return loops;
  };
  try {
    await Promise.all(pass(jobs, false));
    if (retry.length > 0 && !stop.signal.aborted) await Promise.all(pass(listSource(retry), true));
  } finally {
    gate?.stop();
    cwnd.stop();
    options.signal?.removeEventListener('abort', forward);
  }
  if (failure !== null) throw (failure as { error: unknown }).error;
  return stats;
}

async function* listSource(jobs: readonly Job[]): AsyncGenerator<Job> {
  yield* jobs;
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
      yield { target, port };
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

async function attempt(o: EngineOptions, job: Job, now: () => Date, open: Set<HostSession>): Promise<AttemptResult | null> {
  const modes = job.port.mode === 'auto' ? [true, false] : [job.port.mode === 'tls'];
  let last: AttemptResult | null = null;
  for (const tls of modes) {
    last = await attemptWith(o, job, tls, now, open);
    if (last === null || last.outcome === 'answered' || !PLAIN_RETRY.has(last.outcome)) return last;
  }
  return last;
}

async function attemptWith(o: EngineOptions, job: Job, tls: boolean, now: () => Date, open: Set<HostSession>): Promise<AttemptResult | null> {
  const { target } = job;
  const port = job.port.port;
  if (o.limiter !== undefined) {
    try {
      await o.limiter.acquire(target.ip, o.signal);
    } catch {
      return null; // aborted while waiting for a token
    }
  }
  if (o.signal?.aborted) return null;
  const startedAt = now();
  let session: HostSession;
  try {
    session = await o.kit.openSession({ ip: target.ip, port, tls, hostname: target.hostname }, o.limits);
  } catch (e) {
    o.onWarning?.(`probe client failed to open ${target.ip}:${port}: ${errorText(e)}`);
    return failure(target, port, 'unreachable', `client error: ${errorText(e)}`, null, startedAt);
  }
  open.add(session);
  const answered = new Map<string, ProbeResponse>();
  const sent = new Set<string>();
  let firstFailure: Exclude<ProbeOutcome, { kind: 'ok' }> | null = null;
  let budgetNote: string | null = null;
  const deadline = startedAt.getTime() + o.limits.hostBudgetMs;
  try {
    plan: for (let round = 0; round < MAX_PLAN_ROUNDS; round++) {
      const probes = o.kit.nextProbes(answered, sent).filter((p) => !sent.has(p.id));
      if (probes.length === 0) break;
      for (const probe of probes) {
        if (o.signal?.aborted) return null;
        if (Date.now() >= deadline) {
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
    if (answered.size === 0) return failure(target, port, 'protocol-error', `internal error: ${errorText(e)}`, safeCert(session), startedAt);
  } finally {
    open.delete(session);
    session.close();
  }

  const tlsCert = safeCert(session);
  if (answered.size === 0) {
    const kind = firstFailure?.kind ?? 'protocol-error';
    const detail = firstFailure?.detail ?? budgetNote ?? 'no probe answered';
    return failure(target, port, kind, detail, tlsCert, startedAt);
  }
  try {
    const { facts, revisions, errors } = o.kit.runDetectors(answered);
    for (const err of errors ?? []) o.onWarning?.(`detector ${err.detector} failed on ${target.ip}:${port}: ${err.message}`);
    const fp = o.kit.fingerprint(facts);
    const record = assess({ ip: target.ip, port, hostname: target.hostname, tls }, answered, facts, fp, o.kit.kb, startedAt.toISOString());
    const notes = budgetNote === null ? record.notes : [...record.notes, budgetNote];
    return {
      ip: target.ip, port, hostname: target.hostname, outcome: 'answered', detail: null,
      record: notes === record.notes ? record : { ...record, notes },
      facts: facts as Fact[], detectorRevisions: revisions, tlsCert, attemptedAt: startedAt.toISOString(),
    };
  } catch (e) {
    // A detector or the KB threw on hostile input: our bug. Keep the scan going, keep the host visible.
    o.onWarning?.(`assessment failed for ${target.ip}:${port}: ${errorText(e)}`);
    return failure(target, port, 'protocol-error', `internal error while assessing: ${errorText(e)}`, tlsCert, startedAt);
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
