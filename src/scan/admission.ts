/**
 * Admission control against self-inflicted timeouts. TLS handshakes cost CPU; with thousands of
 * attempts in flight a thread can start more handshakes than it can finish, its event loop falls
 * behind, and deadline timers fire before the (already arrived) answers are read: a live Exchange
 * server would be recorded as a timeout. So a new attempt starts only while the event loop keeps up:
 * a timer samples the loop's lag every TICK_MS, and while the smoothed lag is above `maxLagMs`, new
 * attempts wait (those in flight continue). Concurrency is then what the CPU sustains, up to the
 * configured ceiling. One timer per thread, no per-attempt polling.
 */

export interface AdmissionOptions {
  /** Smoothed event-loop lag above which no new attempt starts. */
  readonly maxLagMs?: number;
  /** Attempts started per tick while the loop is lagging not at all (bounds bursts after a pause). */
  readonly burstPerTick?: number;
}

const TICK_MS = 10;

export class AdmissionGate {
  private lag = 0;
  private expected = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly waiters: Array<() => void> = [];
  private readonly maxLag: number;
  private readonly burst: number;

  constructor(o: AdmissionOptions = {}) {
    this.maxLag = o.maxLagMs ?? 50;
    this.burst = o.burstPerTick ?? 256;
  }

  /** Starts sampling. The timer does not keep the process alive. */
  start(): this {
    this.expected = performance.now() + TICK_MS;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Current smoothed lag (ms), for diagnostics and tests. */
  get lagMs(): number {
    return this.lag;
  }

  /** Resolves when a new attempt may start (immediately while the loop keeps up). */
  admit(): Promise<void> | void {
    if (this.timer === null || (this.lag <= this.maxLag && this.waiters.length === 0)) return;
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private tick(): void {
    const now = performance.now();
    const sample = Math.max(0, now - this.expected);
    this.expected = now + TICK_MS;
    // Exponential smoothing: one slow tick (GC) does not stop admissions; a sustained backlog does.
    this.lag = this.lag * 0.7 + sample * 0.3;
    if (this.lag > this.maxLag) return;
    // Release proportionally to how much headroom the loop has.
    const n = Math.max(1, Math.floor(this.burst * (1 - this.lag / this.maxLag)));
    for (const w of this.waiters.splice(0, n)) w();
  }
}

/**
 * Congestion control for the far side (AIMD, as TCP does): a TLS handshake that times out after the TCP
 * connection was accepted usually means the peer is queueing handshakes (one overloaded front end,
 * load balancer or TLS-inspecting firewall serving many of our targets). Then fewer attempts run at
 * once (multiplicative decrease, at most once per `cooldownMs`, never below `min`), and the window
 * grows back slowly with completed attempts (additive increase), up to the configured concurrency.
 * It starts at `initial` and grows by one per completed attempt until the first decrease (slow
 * start), so a scan does not open thousands of handshakes into one queue in its first second.
 */
export class CongestionWindow {
  private window: number;
  private slowStart = true;
  private active = 0;
  private lastCut = -Infinity;
  private readonly waiters: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly max: number,
    private readonly min: number,
    private readonly cooldownMs: number,
    private readonly clock: () => number = () => performance.now(),
    initial: number = max,
  ) {
    this.window = Math.max(Math.min(initial, max), Math.min(min, max));
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

  /** A TLS handshake timed out after connect: shrink, once per cooldown. */
  onCongestion(): void {
    const t = this.clock();
    if (t - this.lastCut < this.cooldownMs) return;
    this.lastCut = t;
    this.slowStart = false;
    this.window = Math.max(this.min, Math.floor(this.window * 0.7));
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
