/**
 * `tocsin findings [--state open|closed|all] [--org NAME] [--cve ID] [--format table|jsonl|csv]` and
 * `tocsin finding show|close|reopen ID` (issue 9 §1). Thin: flags → src/services/findings.ts → print.
 * `findings` folds what is new first (scans, feeds, attribution), so the list is current. Streamed in pages
 * (bounded memory, fixed table widths); stops when stdout closes. Hostile text (organisation names, notes) is
 * sanitised in the table, escaped by JSON in jsonl and formula-safe in CSV.
 */
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { csvRow } from '../core/csv.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { createConstituencyStore } from '../platform/db/constituency-store.js';
import {
  closeFinding, findingEvents, foldFindings, getFinding, listFindings, reopenFinding, type Finding, type FindingEvent, type FindingQuery,
} from '../services/findings.js';

type Format = 'table' | 'jsonl' | 'csv';
const FORMATS: readonly Format[] = ['table', 'jsonl', 'csv'];
const STATES = ['open', 'closed', 'all'] as const;

interface ListFlags {
  state?: string;
  org?: string;
  cve?: string;
  format?: string;
}

interface CloseFlags {
  reason: string;
  until?: string;
  note?: string;
  by?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('findings')
    .description('fold new scan and feed results into findings (one per ip, port and CVE), then list them')
    .option('--state <state>', 'open | closed | all (default open)')
    .option('--org <name>', 'only this organisation\'s findings (name compared case-insensitively)')
    .option('--cve <id>', 'only findings of this CVE (or `compromised`)')
    .option('--format <format>', 'table | jsonl | csv (default table)')
    .action(async (flags: ListFlags) => {
      process.exitCode = await findingsCommand(ctx, flags);
    });
  const finding = program.command('finding').description('show, close or reopen one finding');
  finding
    .command('show')
    .description('a finding with its event history')
    .argument('<id>', 'finding id (from `tocsin findings`)')
    .option('--format <format>', 'text | json (default text)')
    .action(async (id: string, flags: { format?: string }) => {
      process.exitCode = await showCommand(ctx, id, flags.format ?? 'text');
    });
  finding
    .command('close')
    .description('close an open finding as false-positive or accepted-risk (scans and feeds decide the other reasons)')
    .argument('<id>', 'finding id')
    .requiredOption('--reason <reason>', 'false-positive | accepted-risk')
    .option('--until <date>', 'expiry (YYYY-MM-DD or an ISO time): after it the finding comes back if the CVE is still seen')
    .option('--note <text>', 'why (kept in the event history)')
    .option('--by <name>', 'who closes it (default user@host)')
    .action(async (id: string, flags: CloseFlags) => {
      process.exitCode = await closeCommand(ctx, id, flags);
    });
  finding
    .command('reopen')
    .description('reopen a closed finding')
    .argument('<id>', 'finding id')
    .requiredOption('--reason <text>', 'why it is reopened (kept in the event history)')
    .option('--by <name>', 'who reopens it (default user@host)')
    .action(async (id: string, flags: { reason: string; by?: string }) => {
      process.exitCode = await reopenCommand(ctx, id, flags);
    });
}

function defaultBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for the uid (some containers): the host still says who it was.
  }
  return `${user}@${hostname()}`;
}

const quoted = (s: string): string => JSON.stringify(sanitiseText(s, { max: 40 }));

function findingId(raw: string): number {
  return parseIntFlag('ID', raw, 1, Number.MAX_SAFE_INTEGER);
}

/** YYYY-MM-DD (midnight UTC) or a full ISO time. */
export function parseUntil(raw: string | undefined): Date | null {
  if (raw === undefined) return null;
  const t = raw.trim();
  const ok = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))?$/.test(t);
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(t) ? `${t}T00:00:00Z` : t);
  if (!ok || Number.isNaN(d.getTime())) throw new TocsinError('TOCSIN_ARG_INVALID', `--until must be a date (YYYY-MM-DD) or an ISO time with zone, got ${quoted(raw)}`);
  return d;
}

export async function findingsCommand(ctx: CliContext, flags: ListFlags): Promise<number> {
  const format = FORMATS.find((f) => f === (flags.format ?? 'table'));
  if (format === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be one of ${FORMATS.join(', ')}, got ${quoted(flags.format ?? '')}`);
  const state = STATES.find((s) => s === (flags.state ?? 'open'));
  if (state === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--state must be one of ${STATES.join(', ')}, got ${quoted(flags.state ?? '')}`);
  const query: FindingQuery = { state, ...(flags.org === undefined ? {} : { org: flags.org }), ...(flags.cve === undefined ? {} : { cve: flags.cve.trim() }) };
  const database = await openDatabase(ctx.config());
  try {
    if (flags.org !== undefined && (await createConstituencyStore(database.db).getOrg(flags.org)) === null) {
      throw new TocsinError('TOCSIN_ORG_NOT_FOUND', `no organisation named ${quoted(flags.org)}`);
    }
    const fold = await foldFindings(database.db);
    ctx.stderr.write(`tocsin: findings folded (${fold.evidence} new piece(s) of evidence: ${fold.opened} opened, ${fold.closed} closed, ` +
      `${fold.reopened} reopened, ${fold.ownerChanged} owner change(s); ${fold.ms} ms)\n`);
    if (fold.deferred) ctx.stderr.write('tocsin: a scan or feed import is still writing: its evidence will be folded next time (findings may lag it)\n');
    const gone = (): boolean => ctx.stdoutClosed?.aborted === true;
    if (format === 'csv') ctx.stdout.write(`${csvRow(CSV_COLUMNS)}\r\n`);
    if (format === 'table') ctx.stdout.write(`${tableLine(TABLE_HEADER)}\n`);
    let n = 0;
    for await (const f of listFindings(database.db, query)) {
      if (gone()) break;
      n++;
      ctx.stdout.write(format === 'jsonl' ? `${jsonLine(f)}\n` : format === 'csv' ? `${csvRow(csvCells(f))}\r\n` : `${tableLine(tableCells(f))}\n`);
    }
    if (!gone()) {
      if (format === 'table' && n === 0) ctx.stdout.write('no findings match\n');
      ctx.stderr.write(`tocsin: ${n} finding(s)\n`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

/** One JSON object on one line; sanitise 'json' escapes bidi and zero-width characters as well. */
export function jsonLine(f: Finding | FindingEvent | (Finding & { readonly events: readonly FindingEvent[] })): string {
  return sanitiseText(JSON.stringify(f), { style: 'json' });
}

export const CSV_COLUMNS = [
  'id', 'ip', 'port', 'cve', 'product', 'state', 'close_reason', 'closed_at', 'closed_until', 'verdict', 'present', 'org', 'org_id',
  'first_seen', 'last_seen', 'first_observation_id', 'last_observation_id', 'note',
] as const;

export function csvCells(f: Finding): Array<string | number | boolean | null> {
  return [
    f.id, f.ip, f.port, f.cve, f.product, f.state, f.closeReason, f.closedAt, f.closedUntil, f.verdict, f.present, f.org, f.orgId,
    f.firstSeen, f.lastSeen, f.firstObservationId, f.lastObservationId, f.note,
  ];
}

// IPv6 addresses longer than the column are cut with '…' (jsonl and csv have them whole).
const WIDTHS = [8, 30, 16, 13, 6, 14, 24, 10, 10] as const;
const TABLE_HEADER = ['ID', 'IP:PORT', 'CVE', 'VERDICT', 'STATE', 'REASON', 'ORG', 'FIRST SEEN', 'LAST SEEN'];

function tableLine(cells: readonly string[]): string {
  return cells.map((c, i) => {
    const w = WIDTHS[i] ?? 10;
    const t = c.length > w ? `${c.slice(0, w - 1)}…` : c;
    return i === 0 ? t.padStart(w) : t.padEnd(w);
  }).join(' ').trimEnd();
}

export function tableCells(f: Finding): string[] {
  const addr = f.ip.includes(':') ? `[${f.ip}]` : f.ip;
  return [
    String(f.id), `${addr}:${f.port ?? '*'}`, sanitiseText(f.cve, { max: 30 }), f.verdict, f.state, f.closeReason ?? '-',
    f.org === null ? '(unattributed)' : sanitiseText(f.org, { max: 60 }), f.firstSeen.slice(0, 10), f.lastSeen.slice(0, 10),
  ];
}

export async function showCommand(ctx: CliContext, rawId: string, format: string): Promise<number> {
  if (format !== 'text' && format !== 'json') throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be text or json, got ${quoted(format)}`);
  const id = findingId(rawId);
  const database = await openDatabase(ctx.config());
  try {
    const f = await getFinding(database.db, id);
    if (f === null) throw new TocsinError('TOCSIN_FINDING_NOT_FOUND', `no finding ${id}`);
    const events = await findingEvents(database.db, id);
    if (format === 'json') {
      ctx.stdout.write(`${jsonLine({ ...f, events })}\n`);
      return 0;
    }
    const s = (v: string | null, max = 200): string => (v === null ? '-' : sanitiseText(v, { max }));
    const lines = [
      `finding ${f.id}: ${s(f.cve, 40)} on ${f.ip.includes(':') ? `[${f.ip}]` : f.ip}:${f.port ?? '* (host)'}${f.current ? '' : ' (replaced by a newer finding)'}`,
      `  state        ${f.state}${f.closeReason === null ? '' : ` (${f.closeReason}${f.closedUntil === null ? '' : ` until ${f.closedUntil}`})`}`,
      `  verdict      ${f.verdict}${f.present ? '' : ' (not seen in the latest evidence)'}`,
      `  product      ${s(f.product, 40)}`,
      `  organisation ${f.org === null ? '(unattributed)' : `${s(f.org, 100)} (id ${f.orgId})`}`,
      `  first seen   ${f.firstSeen} (observation ${f.firstObservationId ?? '-'})`,
      `  last seen    ${f.lastSeen} (observation ${f.lastObservationId ?? '-'})`,
      ...(f.note === null ? [] : [`  note         ${s(f.note)}`]),
      'history:',
      ...events.map((e) => `  ${e.at}  ${e.kind.padEnd(13)} by ${s(e.who, 60)}${e.observationId === null ? '' : ` (observation ${e.observationId})`}` +
        `${e.detail === null ? '' : `  ${sanitiseText(JSON.stringify(e.detail), { max: 300 })}`}`),
    ];
    ctx.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await database.close();
  }
}

export async function closeCommand(ctx: CliContext, rawId: string, flags: CloseFlags): Promise<number> {
  const id = findingId(rawId);
  const until = parseUntil(flags.until);
  const database = await openDatabase(ctx.config());
  try {
    const f = await closeFinding(database.db, { id, reason: flags.reason, until, note: flags.note ?? null, who: flags.by ?? defaultBy(), now: new Date() });
    ctx.stdout.write(`finding ${f.id} closed (${f.closeReason ?? '-'}${f.closedUntil === null ? '' : ` until ${f.closedUntil}`})\n`);
    return 0;
  } finally {
    await database.close();
  }
}

export async function reopenCommand(ctx: CliContext, rawId: string, flags: { reason: string; by?: string }): Promise<number> {
  const id = findingId(rawId);
  const database = await openDatabase(ctx.config());
  try {
    const f = await reopenFinding(database.db, { id, reason: flags.reason, who: flags.by ?? defaultBy(), now: new Date() });
    ctx.stdout.write(`finding ${f.id} reopened\n`);
    return 0;
  } finally {
    await database.close();
  }
}
