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
