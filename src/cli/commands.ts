/**
 * Explicit command registry: one file per command under src/cli, listed here.
 * (A test checks that every src/cli/*.ts that exports `register` is listed.)
 *
 * Each entry names the top-level commands its module registers and loads the module on demand: `tocsin scan`
 * loads the scan command's modules only (~100 files) instead of every command's (~500, with the web server,
 * mail, the job queue and their packages), which was most of the CPU of starting a command
 * (bench/README.md, stop 17). A test checks that every module registers exactly the names listed.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';

export type CommandModule = { register(program: Command, ctx: CliContext): void };

export interface CommandEntry {
  /** The top-level command names (and aliases) the module registers. */
  readonly names: readonly string[];
  load(): Promise<CommandModule>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { names: ['demo'], load: () => import('./demo.js') },
  { names: ['scan'], load: () => import('./scan.js') },
  { names: ['cancel'], load: () => import('./cancel.js') },
  { names: ['results'], load: () => import('./results.js') },
  { names: ['reassess'], load: () => import('./reassess.js') },
  { names: ['report'], load: () => import('./report.js') },
  { names: ['constituency'], load: () => import('./constituency.js') },
  { names: ['org'], load: () => import('./org.js') },
  { names: ['feeds'], load: () => import('./feeds.js') },
  { names: ['whois'], load: () => import('./whois.js') },
  { names: ['attribution'], load: () => import('./attribution.js') },
  { names: ['exposures'], load: () => import('./exposures.js') },
  { names: ['findings', 'finding'], load: () => import('./findings.js') },
  { names: ['incident'], load: () => import('./incident.js') },
  { names: ['campaign'], load: () => import('./campaign.js') },
  { names: ['export'], load: () => import('./export.js') },
  { names: ['mail'], load: () => import('./mail.js') },
  { names: ['ack'], load: () => import('./ack.js') },
  { names: ['stats'], load: () => import('./stats.js') },
  { names: ['schedule'], load: () => import('./schedule.js') },
  { names: ['serve'], load: () => import('./serve.js') },
  { names: ['user'], load: () => import('./user.js') },
  { names: ['token'], load: () => import('./token.js') },
  { names: ['worker', 'workers'], load: () => import('./worker.js') },
  { names: ['kb'], load: () => import('./kb.js') },
  { names: ['lab'], load: () => import('./lab.js') },
  { names: ['forensics'], load: () => import('./forensics.js') },
  { names: ['db'], load: () => import('./db.js') },
  { names: ['check'], load: () => import('./check.js') },
];

/**
 * The command modules a command line needs, in registry order. A first argument that names a command loads that
 * command's module only; `--version` loads none; anything else (no argument, `--help`, `help CMD`, an unknown
 * or misspelt command, an option first) loads every module, so the program's help lists every command and
 * commander can suggest the nearest name, exactly as when everything was loaded up front.
 */
export async function commandsFor(argv: readonly string[]): Promise<CommandModule[]> {
  const first = argv[0];
  if (first === '--version' || first === '-V') return [];
  const named = first === undefined ? undefined : COMMANDS.find((c) => c.names.includes(first));
  return Promise.all((named === undefined ? COMMANDS : [named]).map((c) => c.load()));
}
