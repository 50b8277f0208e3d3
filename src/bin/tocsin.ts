#!/usr/bin/env node
/** The `tocsin` CLI entry point: parse arguments, run one command, map errors to exit codes. */
import { Command, CommanderError } from 'commander';
import { COMMANDS } from '../cli/commands.js';
import { createContext } from '../cli/context.js';
import { isTocsinError } from '../core/errors.js';

async function main(argv: readonly string[]): Promise<number> {
  const ctx = createContext();
  const program = new Command('tocsin')
    .description('Tocsin: find exposed Exchange servers, decide per CVE with evidence, and help the owners fix them.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) });
  for (const c of COMMANDS) c.register(program, ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e: unknown) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 64;
    if (isTocsinError(e)) {
      ctx.stderr.write(`tocsin: ${e.code}: ${e.message}\n`);
      for (const d of e.details) ctx.stderr.write(`  - ${d}\n`);
      // Name the command the user ran in the generic hint ("See `tocsin kb --help`"), when it is one.
      const command = program.commands.find((c) => c.name() === argv[0])?.name();
      ctx.stderr.write(`  ${command === undefined ? e.hint : e.hint.replace('<command>', command)}\n`);
      return e.exitCode;
    }
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
