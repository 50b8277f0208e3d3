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
