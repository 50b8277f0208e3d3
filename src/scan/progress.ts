/**
 * Progress on stderr: a one-line bar redrawn at most every `intervalMs` when stderr is a terminal
 * (done/total, rate, ETA, Exchange servers found); nothing while running when it is not (logs and
 * pipes stay clean), and one summary line at the end either way. Never writes to stdout.
 *
 * When stdout is the same terminal, whoever writes there first calls erase() (the bar's line is cleared
 * and redrawn on the next add()), or clear() for good before output that must not meet the bar (the
 * scan table). Messages for stderr go through note(), which puts them above the bar.
 */

export interface ProgressSink {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(s: string): unknown;
}

export interface ProgressCounts {
  readonly done: number;
  readonly answered: number;
  readonly exchange: number;
  readonly vulnerable: number;
}

export interface ProgressOptions {
  /** Total jobs ((ip, port) pairs) if known. */
  readonly total: number | null;
  readonly intervalMs?: number;
  /** Injected clock (tests). */
  readonly now?: () => number;
}

export class Progress {
  private done = 0;
  private answered = 0;
  private exchange = 0;
  private vulnerable = 0;
  private lastDraw = 0;
  private drawn = false;
  /** Erased by erase(): the next add() redraws at once, whatever the interval. */
  private erased = false;
  /** Cleared by clear(): never drawn again. */
  private cleared = false;
  private readonly started: number;
  private readonly now: () => number;
  private readonly interval: number;

  constructor(private readonly sink: ProgressSink, private readonly o: ProgressOptions) {
    this.now = o.now ?? (() => Date.now());
    this.started = this.now();
    this.interval = o.intervalMs ?? 200;
  }

  /** Count finished attempts (answered or not). */
  add(c: ProgressCounts): void {
    this.done += c.done;
    this.answered += c.answered;
    this.exchange += c.exchange;
    this.vulnerable += c.vulnerable;
    if (this.sink.isTTY !== true || this.cleared) return;
    const t = this.now();
    if (!this.erased && t - this.lastDraw < this.interval) return;
    this.lastDraw = t;
    this.draw(t);
  }

  /** The current bar text (no control characters). */
  line(t: number = this.now()): string {
    const secs = Math.max((t - this.started) / 1000, 0.001);
    const rate = this.done / secs;
    const total = this.o.total;
    const parts: string[] = [];
    if (total !== null && total > 0) {
      const frac = Math.min(this.done / total, 1);
      const width = 20;
      const fill = Math.round(frac * width);
      parts.push(`[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${this.done}/${total} ${(frac * 100).toFixed(1)}%`);
    } else parts.push(`${this.done} done`);
    parts.push(`${rate.toFixed(0)}/s`);
    if (total !== null && total > this.done && rate > 0) parts.push(`ETA ${formatDuration((total - this.done) / rate)}`);
    parts.push(`answered ${this.answered}`, `Exchange ${this.exchange}`, `vulnerable ${this.vulnerable}`);
    return parts.join('  ');
  }

  private draw(t: number): void {
    // A terminal with no size (0 columns, e.g. under `script`) is treated as 100 wide, not as 20.
    const cols = this.sink.columns !== undefined && this.sink.columns > 0 ? this.sink.columns : 100;
    const text = this.line(t).slice(0, Math.max(cols - 1, 20));
    this.sink.write(`\r${text}\u001b[K`);
    this.drawn = true;
    this.erased = false;
  }

  /** Removes the bar from the terminal until the next add() (e.g. before records go to the same terminal). */
  erase(): void {
    if (this.drawn) this.sink.write('\r\u001b[K');
    this.drawn = false;
    this.erased = true;
  }

  /** Removes the bar for good: later add() calls only count. finish() still writes the summary. */
  clear(): void {
    this.erase();
    this.cleared = true;
  }

  /** Writes one message line (ending in a newline) on its own line, above the bar, which is redrawn. */
  note(line: string): void {
    const wasDrawn = this.drawn;
    this.erase();
    this.sink.write(line);
    if (wasDrawn && !this.cleared) this.draw(this.now());
  }

  /** Clears the bar and writes the summary line. */
  finish(prefix = 'scan'): void {
    const t = this.now();
    if (this.drawn) this.sink.write('\r\u001b[K');
    const secs = (t - this.started) / 1000;
    this.sink.write(`${prefix}: ${this.done} attempts in ${secs.toFixed(1)} s (${(this.done / Math.max(secs, 0.001)).toFixed(0)}/s); `
      + `answered ${this.answered}, Exchange ${this.exchange}, vulnerable ${this.vulnerable} (to any CVE)\n`);
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
