#!/usr/bin/env node
/** The `tocsin` CLI entry point: parse arguments, run one command, map errors to exit codes. */
import { Command, CommanderError } from 'commander';
import { commandsFor } from '../cli/commands.js';
import { createContext, type CliContext } from '../cli/context.js';
import { errno, isTocsinError, TocsinError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { scanStorageError } from '../platform/db/storage-errors.js';

function report(ctx: CliContext, argv: readonly string[], program: Command, e: TocsinError): number {
  ctx.stderr.write(`tocsin: ${e.code}: ${e.message}\n`);
  for (const d of e.details) ctx.stderr.write(`  - ${d}\n`);
  // Name the command the user ran in the generic hint ("See `tocsin kb --help`"), when it is one.
  const command = program.commands.find((c) => c.name() === argv[0])?.name();
  ctx.stderr.write(`  ${command === undefined ? e.hint : e.hint.replace('<command>', command)}\n`);
  return e.exitCode;
}

/**
 * The exit status once stdout failed under a command: a reader that went away (EPIPE) gives 141, as if killed by
 * SIGPIPE, unless the command has its own non-zero status to give; any other write failure (a full disk under
 * `> file`) is a coded error. Null when stdout did not fail.
 */
function stdoutStatus(ctx: CliContext, argv: readonly string[], program: Command, code: number): number | null {
  const signal = ctx.stdoutClosed;
  if (signal?.aborted !== true) return null;
  const why = errno(signal.reason);
  if (why === 'EPIPE') return code === 0 ? 141 : code;
  const detail = why ?? (signal.reason instanceof Error ? signal.reason.message : String(signal.reason));
  return report(ctx, argv, program, new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write to standard output: ${detail}`));
}

/** Errno codes that name a condition of the machine or of a path the user gave, never a bug of ours. */
const ENVIRONMENT_ERRNOS = new Set([
  'ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ELOOP', 'ENAMETOOLONG', 'EMFILE', 'ENFILE', 'EIO', 'EEXIST',
]);

/**
 * A file-system error that escaped a command uncoded (mkdir under a TOCSIN_HOME that is a file, a read-only or
 * full disk): the user can act on it, so it is reported with its path and errno, without a stack trace or exit 70.
 * Commands should still code their own errors; this is the net under them.
 */
function environmentError(e: unknown): TocsinError | null {
  const x = e as NodeJS.ErrnoException | null;
  if (!(e instanceof Error) || typeof x?.code !== 'string' || typeof x.syscall !== 'string' || !ENVIRONMENT_ERRNOS.has(x.code)) return null;
  const path = typeof x.path === 'string' ? ` ${JSON.stringify(x.path.length > 200 ? `${x.path.slice(0, 199)}…` : x.path)}` : '';
  return new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot ${x.syscall}${path}: ${x.code}`, { cause: e });
}

async function main(argv: readonly string[]): Promise<number> {
  const ctx = createContext();
  const program = new Command('tocsin')
    .description('Tocsin: find exposed Exchange servers, decide per CVE with evidence, and help the owners fix them.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) });
  try {
    // Only the named command's modules are loaded (src/cli/commands.ts); inside the try, so a module that fails
    // to load is reported like any other error of the command.
    for (const c of await commandsFor(argv)) c.register(program, ctx);
    await program.parseAsync([...argv], { from: 'user' });
    const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    return stdoutStatus(ctx, argv, program, code) ?? code;
  } catch (e: unknown) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 64;
    if (isTocsinError(e)) return report(ctx, argv, program, e);
    // A write to a stdout that failed can surface as the command's own error (an awaited 'drain' rejects
    // with EPIPE): that is the closed output, not a bug.
    const closed = stdoutStatus(ctx, argv, program, 0);
    if (closed !== null) return closed;
    const fsError = environmentError(e);
    if (fsError !== null) return report(ctx, argv, program, fsError);
    // The database lost, a full disk, a read-only file system under any command: the environment, not a bug.
    const storage = scanStorageError(e, { scanId: null, embeddedHome: null });
    if (isTocsinError(storage)) return report(ctx, argv, program, storage);
    ctx.stderr.write(`tocsin: TOCSIN_INTERNAL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`tocsin: fatal: ${String(e)}\n`);
    process.exitCode = 70;
  },
);
