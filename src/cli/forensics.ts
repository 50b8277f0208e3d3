/** `tocsin forensics`: offline compromise assessment of Exchange logs and files (no database, no network). */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { runForensics, EXIT_CODES } from '../forensics/index.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('forensics')
    .description('look for ProxyLogon/ProxyShell/ProxyNotShell exploitation and web shells in Exchange logs and files (offline)')
    .argument('<paths...>', 'Exchange install tree, Logging folder copies, IIS W3SVC logs, single files, .zip or .gz')
    .option('--format <format>', 'text | jsonl | csv (default: from the --output extension .csv/.jsonl, else text)')
    .option('--output <file>', 'write the output to FILE (the summary still goes to stderr)')
    .option('--since <date>', 'leave out records before DATE (YYYY-MM-DD or ISO 8601)')
    .option('--iocs <file>', 'indicator list (plain or CISA CHIRP YAML); repeat for more files', collect, [] as string[])
    .option('--no-progress', 'no progress line on stderr')
    .addHelpText('after', `\n${EXIT_CODES} See docs/forensics.md.`)
    // Usage errors exit 2 like every other forensics error (the ClamAV convention), not 64.
    .exitOverride((err) => {
      if (err.exitCode === 0) throw err;
      throw new TocsinError('TOCSIN_FORENSICS_INPUT', err.message.replace(/^error: /, ''));
    })
    .action(async (paths: string[], o: { format?: string; output?: string; since?: string; iocs: string[]; progress: boolean }) => {
      const code = await runForensics(
        {
          paths,
          ...(o.format === undefined ? {} : { format: o.format }),
          iocs: o.iocs,
          ...(o.output === undefined ? {} : { output: o.output }),
          ...(o.since === undefined ? {} : { since: o.since }),
          ...(o.progress ? {} : { progress: false }),
        },
        { stdout: ctx.stdout, stderr: ctx.stderr },
      );
      process.exitCode = code;
    });
}
