/**
 * What every command gets: validated config (lazily, so `--help` works with a broken environment),
 * and the standard streams. Commands print records on stdout and everything else on stderr.
 */
import { readConfig, type TocsinConfig } from '../core/config.js';
import { errno } from '../core/errors.js';

export interface CliContext {
  config(): TocsinConfig;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  /**
   * Aborted when stdout can no longer be written: its reader went away (`tocsin scan ... | head -1`, EPIPE) or
   * the write failed (full disk, ...); `reason` is the error. Long commands stop on it as on Ctrl+C; what they
   * still write to stdout is dropped instead of crashing the process.
   */
  readonly stdoutClosed?: AbortSignal;
}

/**
 * A closed stdout is not a crash. Without an 'error' listener, the EPIPE that a write to a closed pipe raises
 * is an uncaught exception (a stack trace and exit 70, or worse, a half-finished scan). Exit status 141
 * (128 + SIGPIPE, what a shell shows for `yes | head -1`) tells a script the output was cut short.
 */
function guardStdio(onStdoutError: (e: unknown) => void): void {
  process.stdout.on('error', (e: unknown) => {
    onStdoutError(e);
    // For a failure after the command returned (its last write failed late); the entry point decides otherwise.
    if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = errno(e) === 'EPIPE' ? 141 : 66;
  });
  // Nowhere left to report a stderr failure: drop it (stdout's state still decides the exit status).
  process.stderr.on('error', () => undefined);
}

export function createContext(): CliContext {
  let cached: TocsinConfig | undefined;
  const closed = new AbortController();
  guardStdio((e) => {
    if (!closed.signal.aborted) closed.abort(e);
  });
  return {
    config() {
      cached ??= readConfig();
      return cached;
    },
    stdout: process.stdout,
    stderr: process.stderr,
    stdoutClosed: closed.signal,
  };
}

/** Resolves on the first SIGINT or SIGTERM (long-running commands: `lab`, `demo`), then stops listening. */
export function untilStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
