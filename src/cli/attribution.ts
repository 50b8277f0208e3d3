/**
 * `tocsin attribution refresh|review|assign|unassign|prefixes import`: the stored attribution (issue 8 §3).
 * - refresh [--full]: bring the stored answers up to date (new addresses, registry changes, newer facts).
 * - review [--format table|jsonl] [--limit N]: the queue of addresses with observations and no owner, and ties.
 * - assign IP|CIDR --org NAME [--note TEXT] [--as WHO]: a manual entry (beats every rule); unassign removes it.
 * - prefixes import FILE [--source NAME]: a prefix-to-ASN table (used when an exposure has no ASN of its own).
 * Thin: parse → src/services/attribute.ts → print. Hostnames, names and notes are hostile text: sanitised.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { errno, TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase, type Database } from '../platform/db/connect.js';
import type { Json } from '../platform/db/schema.js';
import { changeAuthor } from '../services/constituency.js';
import {
  assignAddress,
  importPrefixTable,
  refreshAttributions,
  reviewQueue,
  unassignAddress,
  type RefreshSummary,
  type ReviewRow,
} from '../services/attribute.js';
import type { StoredAttribution } from '../platform/db/attribution-store.js';

const show = (s: string, max = 120): string => sanitiseText(s, { max });

async function withDb<T>(ctx: CliContext, fn: (d: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(ctx.config());
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program.command('attribution').description('stored attribution: refresh it, review the unattributed, assign addresses by hand, import a prefix-to-ASN table');

  cmd.command('refresh')
    .description('bring the stored attributions up to date (new addresses, registry changes, newer facts)')
    .option('--full', 'recompute every address')
    .option('--format <format>', 'text | json (default text)')
    .action(async (flags: { full?: boolean; format?: string }) => {
      const format = oneOf('--format', flags.format ?? 'text', ['text', 'json']);
      const s = await withDb(ctx, (d) => refreshAttributions(d.db, { full: flags.full === true }));
      ctx.stdout.write(format === 'json' ? `${JSON.stringify(s)}\n` : `${summaryLine(s)}\n`);
    });

  cmd.command('review')
    .description('addresses with observations and no organisation (and ties, as "ambiguous"), after a refresh')
    .option('--format <format>', 'table | jsonl (default table)')
    .option('--limit <n>', 'at most N addresses')
    .action(async (flags: { format?: string; limit?: string }) => {
      process.exitCode = await reviewCommand(ctx, flags);
    });

  cmd.command('assign')
    .description('assign an address or network to an organisation by hand (a manual entry: beats every other rule, survives re-imports)')
    .argument('<target>', 'an address or a CIDR')
    .requiredOption('--org <name>', 'the organisation')
    .option('--note <text>', 'why (kept with the assignment)')
    .option('--as <name>', 'record the assignment as made by NAME (default: the OS user)')
    .action(async (target: string, flags: { org: string; note?: string; as?: string }) => {
      const who = changeAuthor(flags.as);
      const note = flags.note === undefined ? null : flags.note.slice(0, 1000);
      const r = await withDb(ctx, (d) => assignAddress(d.db, { target, org: flags.org, note, who }));
      const lines = [`assigned     ${r.override.target} to ${show(r.override.org)} (id ${r.override.orgId}) by ${show(r.override.createdBy, 100)} at ${r.override.createdAt}`];
      if (r.override.note !== null) lines.push(`note         ${show(r.override.note, 300)}`);
      if (r.attribution !== null) lines.push(...storedLines(r.attribution));
      lines.push(summaryLine(r.refresh));
      ctx.stdout.write(`${lines.join('\n')}\n`);
    });

  cmd.command('unassign')
    .description('remove the manual assignment of exactly this address or network')
    .argument('<target>', 'an address or a CIDR')
    .action(async (target: string) => {
      const r = await withDb(ctx, (d) => unassignAddress(d.db, target));
      ctx.stdout.write(`unassigned   ${r.target}\n${summaryLine(r.refresh)}\n`);
    });

  const prefixes = cmd.command('prefixes').description('the prefix-to-ASN table');
  prefixes.command('import')
    .description('replace a source\'s prefix-to-ASN rows from FILE (lines "PREFIX ASN", "PREFIX,ASN" or pyasn\'s "PREFIX<tab>ASN"; # comments)')
    .argument('<file>', 'the table')
    .option('--source <name>', 'the name of this table (a re-import of the same source replaces its rows)', 'default')
    .action(async (file: string, flags: { source: string }) => {
      process.exitCode = await prefixesImportCommand(ctx, file, flags.source);
    });
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new TocsinError('TOCSIN_ARG_INVALID', `${flag} must be ${allowed.join(' or ')}, got ${JSON.stringify(show(value, 20))}`);
  return value as T;
}

export function summaryLine(s: RefreshSummary): string {
  return `refreshed    registry revision ${s.registryRev}: ${s.considered} address(es) computed, ${s.attributed} attributed, ${s.unattributed} unattributed, ${s.changed} changed owner (${s.ms} ms)`;
}

function storedLines(a: StoredAttribution): string[] {
  return [
    `address      ${show(a.ip)}`,
    a.orgId === null ? 'organisation none (unattributed)' : `organisation ${show(a.org ?? `#${a.orgId}`)} (id ${a.orgId})`,
    ...(a.rule === null ? [] : [`rule         ${a.rule}, confidence ${a.confidence.toFixed(2)}${a.tie ? ' (a tie: review it)' : ''}`]),
  ];
}

interface CandidateView {
  readonly org: string | null;
  readonly orgId: number | null;
  readonly rule: string | null;
  readonly confidence: number | null;
  readonly lost: string | null;
  readonly why: string | null;
}

const str = (v: Json | undefined): string | null => (typeof v === 'string' ? v : null);
const num = (v: Json | undefined): number | null => (typeof v === 'number' ? v : null);

/** The stored losing candidates, best first (at most `max`). */
function candidatesOf(stored: Json, max = 3): CandidateView[] {
  if (!Array.isArray(stored)) return [];
  const list = stored as readonly Json[];
  return list.slice(0, max).flatMap((c): CandidateView[] => {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) return [];
    const o = c as { readonly [k: string]: Json };
    return [{ org: str(o.orgName), orgId: num(o.orgId), rule: str(o.rule), confidence: num(o.confidence), lost: str(o.lost), why: str(o.why) }];
  });
}

export async function reviewCommand(ctx: CliContext, flags: { format?: string; limit?: string }): Promise<number> {
  const format = oneOf('--format', flags.format ?? 'table', ['table', 'jsonl']);
  let limit: number | null = null;
  if (flags.limit !== undefined) {
    if (!/^\d{1,9}$/.test(flags.limit.trim()) || Number(flags.limit) < 1) throw new TocsinError('TOCSIN_ARG_INVALID', `--limit must be a positive whole number, got ${JSON.stringify(show(flags.limit, 20))}`);
    limit = Number(flags.limit);
  }
  return withDb(ctx, async (d) => {
    const { summary, rows } = await reviewQueue(d.db, { limit });
    ctx.stderr.write(`${summaryLine(summary)}\n`);
    let n = 0;
    if (format === 'table') ctx.stdout.write(`${['IP'.padEnd(39), 'KIND'.padEnd(12), 'PORTS'.padEnd(12), 'FEED-ASN'.padEnd(10), 'FIRST-SEEN'.padEnd(20), 'LAST-SEEN'.padEnd(20), 'HOSTNAMES / CANDIDATES'].join(' ')}\n`);
    for await (const r of rows) {
      if (ctx.stdoutClosed?.aborted === true) return 141;
      n++;
      ctx.stdout.write(`${format === 'jsonl' ? reviewJson(r) : reviewLine(r)}\n`);
    }
    if (format === 'table' && n === 0) ctx.stdout.write('nothing to review: every observed address has an organisation\n');
    return 0;
  });
}

/** One JSON object per line; JSON escapes control characters, sanitise 'json' escapes bidi and zero-width ones. */
export function reviewJson(r: ReviewRow): string {
  const rec = {
    ip: r.ip, kind: r.kind, ports: r.ports, hostnames: r.hostnames, feedAsn: r.feedAsn, firstSeen: r.firstSeen, lastSeen: r.lastSeen,
    org: r.org, orgId: r.orgId, rule: r.rule, tie: r.kind === 'ambiguous', candidates: candidatesOf(r.candidates),
  };
  return sanitiseText(JSON.stringify(rec), { style: 'json' });
}

function reviewLine(r: ReviewRow): string {
  const cands = candidatesOf(r.candidates).map((c) => `${show(c.org ?? `#${c.orgId ?? '?'}`, 40)} by ${c.rule ?? '?'} (${c.lost ?? '?'})`);
  const kind = r.kind === 'ambiguous' ? `tie:${show(r.org ?? '', 40)}` : 'unattributed';
  const detail = [show(r.hostnames.join(','), 100), ...cands].filter((x) => x !== '').join('; ');
  return [show(r.ip).padEnd(39), kind.padEnd(12), (r.ports.join(',') || '-').padEnd(12), (r.feedAsn === null ? '-' : `AS${r.feedAsn}`).padEnd(10),
    (r.firstSeen?.slice(0, 19) ?? '-').padEnd(20), (r.lastSeen?.slice(0, 19) ?? '-').padEnd(20), detail || '-'].join(' ');
}

async function* fileLines(file: string): AsyncGenerator<string> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) yield line;
  } catch (e) {
    throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read ${show(file, 200)}: ${errno(e) ?? (e instanceof Error ? e.message : String(e))}`);
  } finally {
    rl.close();
    input.destroy();
  }
}

export async function prefixesImportCommand(ctx: CliContext, file: string, source: string): Promise<number> {
  const r = await withDb(ctx, (d) => importPrefixTable(d.db, fileLines(file), source));
  for (const b of r.bad.slice(0, 100)) ctx.stderr.write(`${show(file, 200)}:${b.line}: ${show(b.error, 200)} (skipped)\n`);
  if (r.bad.length > 100) ctx.stderr.write(`… and ${r.bad.length - 100} more bad line(s)\n`);
  ctx.stdout.write(`prefixes     source ${show(r.source, 64)}: ${r.rows} row(s) read, ${r.added} added, ${r.changed} changed, ${r.removed} removed, ${r.bad.length} bad line(s) skipped\n`);
  return 0;
}
