/**
 * New-connection pacing: a token bucket overall and one per /24 (IPv4) or /64 (IPv6) network, so a
 * scan never hammers one organisation's network however its targets are ordered.
 *
 * Each bucket is kept as a "theoretical arrival time" (GCRA, the virtual-scheduling form of a token
 * bucket): O(1) per call, no timers per bucket, no queues. A caller reserves the earliest slot of its
 * network bucket, sleeps until then, then reserves the earliest global slot and sleeps again (see
 * acquire). Reservations are handed out in call order, so waiting is FIFO per bucket.
 *
 * Memory: a network bucket whose arrival time has passed is indistinguishable from a fresh one, so
 * idle buckets are swept (every SWEEP_EVERY acquisitions, or when the map grows past maxBuckets).
 * The clock is injectable for tests.
 */
import { networkKey } from '../core/ip.js';

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms` (rejects if `signal` aborts first). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Sleepers per abort signal, with ONE 'abort' listener per signal. Thousands of attempts can wait for
 * a token at once on the scan's signal; a listener each made Node print MaxListenersExceededWarning on
 * every `--rate` run (and cost an add/remove per token).
 */
const sleepersBySignal = new WeakMap<AbortSignal, Set<(reason: unknown) => void>>();

function onAbortOnce(signal: AbortSignal, cancel: (reason: unknown) => void): () => void {
  let set = sleepersBySignal.get(signal);
  if (set === undefined) {
    const fresh = new Set<(reason: unknown) => void>();
    set = fresh;
    sleepersBySignal.set(signal, fresh);
    signal.addEventListener('abort', () => {
      sleepersBySignal.delete(signal);
      const reason: unknown = signal.reason ?? new Error('aborted');
      for (const c of fresh) c(reason);
      fresh.clear();
    }, { once: true });
  }
  set.add(cancel);
  const owner = set;
  return () => {
    owner.delete(cancel);
  };
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      if (signal === undefined) {
        setTimeout(resolve, ms);
        return;
      }
      const forget = onAbortOnce(signal, (reason) => {
        clearTimeout(t);
        reject(reason);
      });
      const t = setTimeout(() => {
        forget();
        resolve();
      }, ms);
    }),
};

export interface RateLimitOptions {
  /** New connections per second overall; 0 = unlimited. */
  readonly perSecond: number;
  /** New connections per second into one /24 (IPv4) or /64 (IPv6); 0 = unlimited. */
  readonly perNetworkPerSecond: number;
  /** Connections allowed back to back before pacing starts (default: 5% of a second's worth, at least 1). */
  readonly burst?: number;
  readonly networkBurst?: number;
  readonly clock?: Clock;
  /** Sweep idle network buckets when more than this many are held (default 65,536). */
  readonly maxBuckets?: number;
}

const SWEEP_EVERY = 4096;

/** One bucket: interval between tokens, tolerance for bursts, next theoretical arrival time. */
interface Bucket {
  tat: number;
}

export class RateLimiter {
  private readonly clock: Clock;
  private readonly gInterval: number;
  private readonly gTolerance: number;
  private readonly nInterval: number;
  private readonly nTolerance: number;
  private readonly global: Bucket = { tat: -Infinity };
  private readonly nets = new Map<number | string, Bucket>();
  private readonly maxBuckets: number;
  private calls = 0;
  private sizeAfterSweep = 0;

  constructor(opts: RateLimitOptions) {
    this.clock = opts.clock ?? systemClock;
    const g = Math.max(0, opts.perSecond);
    const n = Math.max(0, opts.perNetworkPerSecond);
    this.gInterval = g > 0 ? 1000 / g : 0;
    this.nInterval = n > 0 ? 1000 / n : 0;
    const gBurst = Math.max(1, Math.floor(opts.burst ?? Math.ceil(g * 0.05)));
    const nBurst = Math.max(1, Math.floor(opts.networkBurst ?? Math.ceil(n * 0.05)));
    this.gTolerance = (gBurst - 1) * this.gInterval;
    this.nTolerance = (nBurst - 1) * this.nInterval;
    this.maxBuckets = opts.maxBuckets ?? 65_536;
  }

  /** True when neither limit is set: acquire() then never waits. */
  get unlimited(): boolean {
    return this.gInterval === 0 && this.nInterval === 0;
  }

  /** Network buckets currently held (for tests and diagnostics). */
  get bucketCount(): number {
    return this.nets.size;
  }

  /**
   * Reserves the next slot in `ip`'s network bucket; returns the wait in ms (≥ 0). Synchronous, O(1).
   */
  reserveNetwork(ip: string): number {
    if (this.nInterval === 0) return 0;
    const now = this.clock.now();
    const key = networkKey(ip) ?? ip;
    let bucket = this.nets.get(key);
    if (bucket === undefined) {
      bucket = { tat: -Infinity };
      this.nets.set(key, bucket);
    }
    const t = Math.max(now, bucket.tat - this.nTolerance);
    bucket.tat = Math.max(bucket.tat, t) + this.nInterval;
    // periodic sweep, plus an early one when the map doubles past the cap (an all-active map is not re-swept every call)
    if (++this.calls % SWEEP_EVERY === 0 || (this.nets.size > this.maxBuckets && this.nets.size > 2 * this.sizeAfterSweep)) this.sweep(now);
    return t - now;
  }

  /** Reserves the next slot in the global bucket; returns the wait in ms (≥ 0). */
  reserveGlobal(): number {
    if (this.gInterval === 0) return 0;
    const now = this.clock.now();
    const t = Math.max(now, this.global.tat - this.gTolerance);
    this.global.tat = Math.max(this.global.tat, t) + this.gInterval;
    return t - now;
  }

  /**
   * Resolves when a new connection to `ip` may be opened; rejects if `signal` aborts while waiting.
   *
   * Network first, then global: a global slot is taken only when the network allows the connection,
   * so one busy /24 waiting for its turn never holds back the other networks (reserving both at the
   * same future instant would push the global schedule forward for everyone). The per-network spacing
   * is exact unless the global bucket is itself backlogged, where it can shrink by at most the change
   * in global backlog between two connections into the same network.
   */
  async acquire(ip: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    if (this.unlimited) return;
    const wn = this.reserveNetwork(ip);
    if (wn > 0) await this.clock.sleep(wn, signal);
    const wg = this.reserveGlobal();
    if (wg > 0) await this.clock.sleep(wg, signal);
  }

  /** Drops buckets whose reservations are all in the past (a fresh bucket behaves the same). */
  private sweep(now: number): void {
    for (const [k, b] of this.nets) if (b.tat <= now) this.nets.delete(k);
    this.sizeAfterSweep = this.nets.size;
  }
}

/** A limiter, or null when both limits are 0 (the engine then skips pacing entirely). */
export function createRateLimiter(opts: RateLimitOptions): RateLimiter | null {
  const r = new RateLimiter(opts);
  return r.unlimited ? null : r;
}
