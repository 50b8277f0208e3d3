/**
 * A clock for tests where time moves only when the test says so: `now()` is `t`, and `sleep()` resolves when
 * `advance()` moves `t` past its end (or rejects when its signal aborts). Implements the engine's `Clock`, so
 * rate limits, admission control and retry backoff can be tested without waiting or asserting timings.
 */
import type { Clock } from '../../src/scan/rate-limit.js';

export class ManualClock implements Clock {
  t = 0;
  private sleepers: Array<{ at: number; resolve: () => void }> = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      // Like the real clock: a sleep that ends removes its abort listener, so a long-lived signal shared by
      // thousands of sleeps never collects listeners (MaxListenersExceededWarning).
      const onAbort = (): void => {
        this.sleepers = this.sleepers.filter((x) => x !== s);
        reject(signal?.reason);
      };
      const s = {
        at: this.t + ms,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.sleepers.push(s);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Sleeps not yet due. */
  get waiting(): number {
    return this.sleepers.length;
  }

  /**
   * Moves time on and resolves the sleeps that are due, at once (synchronously). The promise settles after
   * the event loop's next check phase, so the code those sleeps woke has run: await it unless the test paces
   * real time itself.
   */
  advance(ms: number): Promise<void> {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.resolve();
    return new Promise((r) => setImmediate(r));
  }
}
