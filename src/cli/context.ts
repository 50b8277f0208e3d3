/**
 * What every command gets: validated config (lazily, so `--help` works with a broken environment),
 * and the standard streams. Commands print records on stdout and everything else on stderr.
 */
import { readConfig, type TocsinConfig } from '../core/config.js';

export interface CliContext {
  config(): TocsinConfig;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
}

export function createContext(): CliContext {
  let cached: TocsinConfig | undefined;
  return {
    config() {
      cached ??= readConfig();
      return cached;
    },
    stdout: process.stdout,
    stderr: process.stderr,
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
