/**
 * Groups results into batches (by count or age) and applies back-pressure: `push` returns a promise
 * that waits while too many batches are still being handled downstream (storage, output, or the
 * MessagePort to the main thread). This keeps memory bounded when the network outruns the database.
 */
import type { AttemptResult } from './ports.js';

export interface BatcherOptions {
  readonly maxBatch: number;
  readonly maxAgeMs: number;
  /**
   * At most this many batches are in `sink` at once, and push() waits while that many are there. Many
   * concurrent pushers (the engine's loops) can fill further batches meanwhile: those wait here, in
   * order, instead of entering the sink (where they would overlap, e.g. thousands of output writes
   * waiting for 'drain' at once).
   */
  readonly maxInFlight: number;
  sink(batch: readonly AttemptResult[]): Promise<void>;
}

export class Batcher {
  private buf: AttemptResult[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  /** Full batches waiting for a sink slot. */
  private queued: AttemptResult[][] = [];
  private waiters: Array<() => void> = [];
  private failure: unknown = null;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly o: BatcherOptions) {}

  async push(r: AttemptResult): Promise<void> {
    if (this.failure !== null) throw this.failure;
    this.buf.push(r);
    if (this.buf.length >= this.o.maxBatch) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.o.maxAgeMs);
    while (this.inFlight + this.queued.length >= this.o.maxInFlight && this.failure === null) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure !== null) throw this.failure;
  }

  /** Hand the current buffer to the sink now. */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.buf.length === 0) return;
    this.queued.push(this.buf);
    this.buf = [];
    this.pump();
  }

  /** Hands queued batches to the sink while fewer than maxInFlight are there. */
  private pump(): void {
    if (this.failure !== null) {
      this.queued = [];
      return;
    }
    while (this.inFlight < this.o.maxInFlight && this.queued.length > 0) {
      this.start(this.queued.shift() as AttemptResult[]);
    }
  }

  private start(batch: AttemptResult[]): void {
    this.inFlight++;
    let p: Promise<void>;
    try {
      p = this.o.sink(batch);
    } catch (e) {
      p = Promise.reject(e);
    }
    p = p.then(
      () => undefined,
      (e: unknown) => {
        this.failure ??= e;
      },
    ).finally(() => {
      this.inFlight--;
      this.pending.delete(p);
      // After a failure nothing more goes to the sink (the caller stops; resume redoes the rest).
      this.pump();
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    this.pending.add(p);
  }

  /** Flush and wait for every batch to settle; rethrows the first sink failure. */
  async close(): Promise<void> {
    this.flush();
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    if (this.failure !== null) throw this.failure;
  }
}
