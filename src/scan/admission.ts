/**
 * Admission control against self-inflicted timeouts. TLS handshakes cost CPU; with thousands of
 * attempts in flight a thread can start more handshakes than it can finish, its event loop falls
 * behind, and deadline timers fire before the (already arrived) answers are read: a live Exchange
 * server would be recorded as a timeout. So a new attempt starts only while the event loop keeps up:
 * a timer samples the loop's lag every TICK_MS, and while the smoothed lag is above `maxLagMs`, new
 * attempts wait (those in flight continue). Concurrency is then what the CPU sustains, up to the
 * configured ceiling. One timer per thread, no per-attempt polling.
 *
 * Also here: the retry queue (RetryQueue), which gives attempts that failed the way congestion makes
 * them fail (no answer to the connect, a TLS handshake timeout) more tries after a backoff.
 */
import type { Clock } from './rate-limit.js';

/** A repeating timer; it keeps the process alive only while ref'd (it starts unref'd). */
export interface Ticker {
  ref(): void;
  unref(): void;
  cancel(): void;
}

/**
 * Time as the gate sees it: a monotonic clock and a repeating timer. The lag is how late the timer's
 * callback runs by that clock, so a test that moves a manual clock past a tick's due time simulates a
 * blocked event loop exactly.
 */
export interface GateTimers {
  now(): number;
  every(ms: number, fn: () => void): Ticker;
}

/** The real clock and setInterval. */
export const systemGateTimers: GateTimers = {
  now: () => performance.now(),
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return { ref: () => void t.ref(), unref: () => void t.unref(), cancel: () => clearInterval(t) };
  },
};

/**
 * Gate timers on an engine Clock (now + sleep): each tick is a sleep that starts when the previous tick
 * ran. For a manual clock (tests); ref/unref do nothing (a sleep has no handle to keep the process alive).
 */
export function gateTimersOn(clock: Clock): GateTimers {
  return {
    now: () => clock.now(),
    every(ms, fn) {
      const ac = new AbortController();
      const loop = (): void => {
        clock.sleep(ms, ac.signal).then(() => {
          if (ac.signal.aborted) return;
          fn();
          loop();
        }, () => undefined);
      };
      loop();
      return { ref: () => undefined, unref: () => undefined, cancel: () => ac.abort() };
    },
  };
}

export interface AdmissionOptions {
  /** Smoothed event-loop lag above which no new attempt starts. */
  readonly maxLagMs?: number;
  /** Attempts started per tick while the loop is lagging not at all (bounds bursts after a pause). */
  readonly burstPerTick?: number;
  /** Clock and timer (default: the real ones). */
  readonly timers?: GateTimers;
}

const TICK_MS = 10;

export class AdmissionGate {
  private lag = 0;
  private expected = 0;
  private timer: Ticker | null = null;
  private running = false;
  private readonly waiters: Array<() => void> = [];
  private readonly maxLag: number;
  private readonly burst: number;
  private readonly timers: GateTimers;

  constructor(o: AdmissionOptions = {}) {
    this.maxLag = o.maxLagMs ?? 50;
    this.burst = o.burstPerTick ?? 256;
    this.timers = o.timers ?? systemGateTimers;
  }

  /** Starts sampling every TICK_MS. The timer does not keep the process alive (except while attempts wait on it). */
  start(): this {
    this.running = true;
    this.expected = this.timers.now() + TICK_MS;
    this.timer = this.timers.every(TICK_MS, () => this.tick());
    return this;
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
    this.running = false;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Current smoothed lag (ms), for diagnostics and tests. */
  get lagMs(): number {
    return this.lag;
  }

  /** Resolves when a new attempt may start (immediately while the loop keeps up). */
  admit(): Promise<void> | void {
    if (!this.running || (this.lag <= this.maxLag && this.waiters.length === 0)) return;
    // While attempts wait here, the timer is what releases them: it must keep the process alive
    // (unref'd, a scan whose every attempt waits at the gate let Node exit with the scan unfinished).
    if (this.waiters.length === 0) this.timer?.ref();
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** One sample: how late this tick came is the loop's lag. */
  private tick(): void {
    const now = this.timers.now();
    const sample = Math.max(0, now - this.expected);
    this.expected = now + TICK_MS;
    // Exponential smoothing: one slow tick (GC) does not stop admissions; a sustained backlog does.
    this.lag = this.lag * 0.7 + sample * 0.3;
    if (this.lag > this.maxLag) return;
    // Release proportionally to how much headroom the loop has.
    const n = Math.max(1, Math.floor(this.burst * (1 - this.lag / this.maxLag)));
    for (const w of this.waiters.splice(0, n)) w();
    if (this.waiters.length === 0) this.timer?.unref();
  }
}

/** Handshakes judged together by CongestionWindow.onHandshake (their median decides). */
export const HANDSHAKE_SAMPLES = 64;
/** Window factor when most handshakes queued: gentler than a timeout's 0.7 (nothing was lost yet). */
const DELAY_DECREASE = 0.85;
/** Lowest window queued handshakes lead to (or a quarter of the timeout floor, if more). */
const DELAY_FLOOR = 16;
/** Linux's initial SYN retransmission timeout: a connect this slow had its SYN sent again. */
const SYN_RETRY_MS = 1000;

/**
 * Congestion control for the far side (AIMD, as TCP does): a TLS handshake that times out after the TCP
 * connection was accepted usually means the peer is queueing handshakes (one overloaded front end,
 * load balancer or TLS-inspecting firewall serving many of our targets). Then fewer attempts run at
 * once (multiplicative decrease, at most once per `cooldownMs`, never below `min`), and the window
 * grows back slowly with completed attempts (additive increase), up to the configured concurrency.
 * It starts at `initial` and grows by one per completed attempt until the first decrease (slow
 * start), so a scan does not open thousands of handshakes into one queue in its first second.
 * Handshakes that complete but waited (onHandshake) shrink it earlier and more gently, before anything
 * times out.
 */
export class CongestionWindow {
  private window: number;
  private slowStart = true;
  private active = 0;
  private lastCut = -Infinity;
  private readonly waiters: Array<() => void> = [];
  private stopped = false;
  /** Handshake samples in the current group, and how many of them were queued (see onHandshake). */
  private samples = 0;
  private queued = 0;
  private lastDelayCut = -Infinity;
  private readonly delayMin: number;

  /**
   * @param queueMs handshake wait beyond two connect times above which a handshake counts as queued
   *   (onHandshake); 0 turns that signal off.
   */
  constructor(
    private readonly max: number,
    private readonly min: number,
    private readonly cooldownMs: number,
    private readonly clock: () => number = () => performance.now(),
    initial: number = max,
    private readonly queueMs: number = 0,
  ) {
    this.window = Math.max(Math.min(initial, max), Math.min(min, max));
    // Queued handshakes may take the window below the floor that timeouts respect: tarpits time TLS out
    // (so timeouts alone must not starve a scan), but never complete a handshake, so they give no samples.
    this.delayMin = Math.min(min, max, Math.max(DELAY_FLOOR, Math.floor(min / 4)));
  }

  /** Current number of attempts allowed at once. */
  get limit(): number {
    return Math.floor(this.window);
  }

  /** Resolves when an attempt may start; pair with release(). */
  acquire(): Promise<void> | void {
    if (this.stopped || (this.active < this.limit && this.waiters.length === 0)) {
      this.active++;
      return;
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    this.active--;
    this.pump();
  }

  /** An attempt ended without a congestion sign (answered, refused, connect timeout...): grow. */
  onCompleted(): void {
    if (this.window >= this.max) return;
    this.window = Math.min(this.max, this.window + (this.slowStart ? 1 : 8 / this.window));
    this.pump();
  }

  /**
   * One completed TLS handshake: `connectMs` for the TCP connect, `handshakeMs` for the handshake after
   * it. A handshake takes one or two round trips, which the connect time measures; what it takes beyond
   * two connect times is time the handshake waited, at the peer (a front end serving many of our targets
   * queues them) or in our own event loop. In each group of HANDSHAKE_SAMPLES handshakes, when more than
   * half waited longer than `queueMs`, the window shrinks gently (x DELAY_DECREASE, at most once per two
   * `queueMs`): the peer keeps a queue of about `queueMs` (so it stays busy and the throughput holds,
   * whatever the round-trip time) while far fewer attempts sit in it than a timeout-only window lets in.
   * One slow server does not move the median; hosts far away wait no longer than their round trips.
   * Without this, only TLS timeouts shrank the window: by then thousands of handshakes queued, each
   * holding a socket and its buffers (memory, GC, timers) and some retried, all costing CPU per host.
   */
  onHandshake(connectMs: number, handshakeMs: number): void {
    if (this.queueMs <= 0) return;
    this.samples++;
    // A connect of a second or more had its SYN sent again (a full accept queue, or loss): its time says
    // nothing about the round trip, and the whole handshake is compared with the threshold.
    const rtt = connectMs < SYN_RETRY_MS ? connectMs : 0;
    if (handshakeMs - 2 * rtt > this.queueMs) this.queued++;
    if (this.samples < HANDSHAKE_SAMPLES) return;
    const congested = this.queued * 2 > this.samples;
    this.samples = 0;
    this.queued = 0;
    if (!congested) return;
    const t = this.clock();
    if (t - this.lastDelayCut < 2 * this.queueMs) return;
    this.lastDelayCut = t;
    this.slowStart = false;
    this.window = Math.max(this.delayMin, Math.floor(this.window * DELAY_DECREASE));
  }

  /** A TLS handshake timed out after connect: shrink, once per cooldown. */
  onCongestion(): void {
    const t = this.clock();
    if (t - this.lastCut < this.cooldownMs) return;
    this.lastCut = t;
    this.slowStart = false;
    // Below the floor already (queued handshakes took it there): a timeout does not raise it back.
    if (this.window > this.min) this.window = Math.max(this.min, Math.floor(this.window * 0.7));
  }

  /** Releases every waiter (scan stopping). */
  stop(): void {
    this.stopped = true;
    for (const w of this.waiters.splice(0)) {
      this.active++;
      w();
    }
  }

  private pump(): void {
    while (this.waiters.length > 0 && (this.stopped || this.active < this.limit)) {
      this.active++;
      this.waiters.shift()?.();
    }
  }
}

/**
 * Attempts waiting for another try, each due after an exponential backoff: try n+1 waits
 * `baseMs * 2^(n-1)` times a spread factor in [1, 2) (deterministic, so attempts that failed together,
 * e.g. SYNs dropped by one full accept queue, do not all come back in the same millisecond).
 *
 * Loops take due items without waiting (`popDue`) while they still have fresh work; once the fresh work
 * is gone they `take()`: the next item when it is due, or null once the engine says no more can come
 * (`finish`). One timer for all waiters, on the injected clock. Bounded: `push` refuses past `max`.
 */
export class RetryQueue<T> {
  private readonly heap: Array<{ due: number; seq: number; item: T }> = [];
  private readonly waiters: Array<(item: T | null) => void> = [];
  private timer: AbortController | null = null;
  private timerDue = Infinity;
  private seq = 0;
  private finished = false;

  constructor(
    private readonly clock: Clock,
    private readonly baseMs: number,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** Queues `item` for its try number `tries + 1` (tries = how often it was tried so far, >= 1). */
  push(item: T, tries: number): boolean {
    if (this.heap.length >= this.max) return false;
    const spread = 1 + (this.seq % 8) / 8;
    const due = this.clock.now() + this.baseMs * 2 ** Math.max(0, tries - 1) * spread;
    this.heapPush({ due, seq: this.seq++, item });
    this.arm();
    return true;
  }

  /** A due item, or undefined (never waits). */
  popDue(): T | undefined {
    const top = this.heap[0];
    if (top === undefined || top.due > this.clock.now()) return undefined;
    return this.heapPop()?.item;
  }

  /** The next item once it is due; null after finish() or stop() when nothing is left for this caller. */
  take(): Promise<T | null> | T | null {
    const due = this.popDue();
    if (due !== undefined) return due;
    if (this.finished && this.heap.length === 0) return null;
    return new Promise<T | null>((resolve) => {
      this.waiters.push(resolve);
      this.arm();
    });
  }

  /** No more pushes will come once the queue is empty: waiters get null when nothing is queued. */
  finish(): void {
    this.finished = true;
    if (this.heap.length === 0) this.releaseAll();
  }

  /** Scan stopping: every waiter gets null, queued items are dropped (a resume redoes them). */
  stop(): void {
    this.finished = true;
    this.heap.length = 0;
    this.releaseAll();
  }

  private releaseAll(): void {
    this.timer?.abort();
    this.timer = null;
    this.timerDue = Infinity;
    for (const w of this.waiters.splice(0)) w(null);
  }

  /** One timer, for the earliest item, only while someone waits. */
  private arm(): void {
    const top = this.heap[0];
    if (this.waiters.length === 0 || top === undefined) return;
    if (this.timer !== null && this.timerDue <= top.due) return;
    this.timer?.abort();
    const ac = new AbortController();
    this.timer = ac;
    this.timerDue = top.due;
    this.clock.sleep(Math.max(0, top.due - this.clock.now()), ac.signal).then(() => {
      if (this.timer !== ac) return;
      this.timer = null;
      this.timerDue = Infinity;
      this.hand();
    }, () => undefined);
  }

  /** Hands due items to waiters in arrival order, then re-arms for the next one. */
  private hand(): void {
    while (this.waiters.length > 0) {
      const item = this.popDue();
      if (item === undefined) break;
      this.waiters.shift()?.(item);
    }
    if (this.finished && this.heap.length === 0) this.releaseAll();
    else this.arm();
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a] as { due: number; seq: number };
    const y = this.heap[b] as { due: number; seq: number };
    return x.due < y.due || (x.due === y.due && x.seq < y.seq);
  }

  private swap(a: number, b: number): void {
    const t = this.heap[a] as { due: number; seq: number; item: T };
    this.heap[a] = this.heap[b] as { due: number; seq: number; item: T };
    this.heap[b] = t;
  }

  private heapPush(e: { due: number; seq: number; item: T }): void {
    this.heap.push(e);
    let i = this.heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private heapPop(): { due: number; seq: number; item: T } | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined || this.heap.length === 0) return top;
    this.heap[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}
