/**
 * Entry point of the self-contained bundle (`tocsin-forensics.cjs`, built by
 * scripts/build-forensics-bundle.mjs): `node tocsin-forensics.cjs PATH... [options]`.
 * Uses node:util parseArgs so the bundle needs nothing beyond Node 20.
 */
import { parseArgs } from 'node:util';
import { isTocsinError } from '../core/errors.js';
import { EXIT_CODES } from './report.js';
import { runForensics } from './run.js';
import { kitBanner } from './version.js';

const USAGE = `Usage: node tocsin-forensics.cjs PATH... [options]
(${kitBanner()})

Offline compromise assessment for Microsoft Exchange servers (ProxyLogon, ProxyShell, ProxyNotShell,
web shells). PATH: an Exchange install tree or copies of its Logging folders, IIS W3SVC logs, single
files, .zip or .gz archives.

Options:
  --format text|jsonl|csv   output format (default: from --output .csv/.jsonl, else text)
  --output FILE             write the output to FILE (summary still on stderr)
  --since DATE              leave out records before DATE (YYYY-MM-DD or ISO 8601)
  --iocs FILE               load indicators (plain lists or CISA CHIRP YAML); repeat for more files
  --no-progress             no progress line on stderr
  --version                 print the kit version and rules revision
  -h, --help                this text

${EXIT_CODES}
`;

export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        format: { type: 'string' },
        output: { type: 'string' },
        since: { type: 'string' },
        iocs: { type: 'string', multiple: true },
        'no-progress': { type: 'boolean' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e: unknown) {
    process.stderr.write(`tocsin-forensics: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (v.version === true) {
    process.stdout.write(`${kitBanner()}\n`);
    return 0;
  }
  try {
    return await runForensics(
      {
        paths: parsed.positionals,
        ...(v.format === undefined ? {} : { format: v.format }),
        ...(v.output === undefined ? {} : { output: v.output }),
        ...(v.since === undefined ? {} : { since: v.since }),
        iocs: v.iocs ?? [],
        ...(v['no-progress'] === true ? { progress: false } : {}),
      },
      { stdout: process.stdout, stderr: process.stderr },
    );
  } catch (e: unknown) {
    if (isTocsinError(e)) {
      process.stderr.write(`tocsin-forensics: ${e.code}: ${e.message}\n`);
      for (const d of e.details) process.stderr.write(`  - ${d}\n`);
      process.stderr.write(`  ${e.hint}\n`);
    } else {
      process.stderr.write(`tocsin-forensics: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    return 2;
  }
}

/**
 * A reader that went away (`tocsin-forensics ... | head -1`) is no error of the run: without a handler the
 * EPIPE became an unhandled 'error' event with a stack trace. Any other write failure (a full disk under
 * `> file`) is reported in one line and exits 2.
 */
let stdoutFailed = false;
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE' || stdoutFailed) return;
  stdoutFailed = true;
  process.stderr.write(`tocsin-forensics: cannot write to standard output: ${e.code ?? e.message}\n`);
  process.exitCode = 2;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = stdoutFailed ? 2 : code;
  },
  () => {
    process.exitCode = 2;
  },
);
