/**
 * `tocsin incident list|show|triage|link|report` (issue 10 §5): the analyst's side of incident reports at the
 * command line. Thin: flags → src/services/incidents.ts → print. `link` ties a report by hand to a finding, a
 * campaign or another report; `report --file stage0.json` (or `-` for stdin) files a report an analyst took by phone. The CLI acts as staff (it has the database), named by `--by` (default
 * user@host). Hostile text (what reporters wrote) is sanitised in tables and text, escaped by JSON in jsonl/json,
 * and formula-safe in CSV.
 */
import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { csvRow } from '../core/csv.js';
import { TocsinError, errno } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import {
  INCIDENT_CSV_COLUMNS, LINK_KINDS, allIncidents, incidentCsvCells, linkIncident, reportIncident, showIncident, staffActor, triageIncident, type IncidentDetail, type IncidentSummary,
} from '../services/incidents.js';

type Format = 'table' | 'jsonl' | 'csv';
const FORMATS: readonly Format[] = ['table', 'jsonl', 'csv'];
/** A stage-0 report is a few KiB; anything this large is not one. */
const MAX_REPORT_BYTES = 1024 * 1024;

const quoted = (s: string): string => JSON.stringify(sanitiseText(s, { max: 40 }));

function defaultBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for the uid (some containers): the host still says who it was.
  }
  return `${user}@${hostname()}`;
}

interface ListFlags { status?: string; overdue?: boolean; category?: string; org?: string; format?: string }
interface LinkFlags { finding?: string; campaign?: string; incident?: string; note?: string; by?: string }
interface TriageFlags { status: string; category?: string; owner?: string; duplicateOf?: string; note?: string; by?: string }

export function register(program: Command, ctx: CliContext): void {
  const incident = program.command('incident').description('incident reports: list the triage queue, show, triage, or file a report taken by phone');
  incident
    .command('list')
    .description('incident reports, newest first, with their SLA clocks')
    .option('--status <status>', 'open (default: received, triage, incident) | all | received | triage | incident | duplicate | rejected | resolved (comma list)')
    .option('--overdue', 'only reports with an acknowledge or first-response clock overdue')
    .option('--category <c>', 'C1 to C6')
    .option('--org <name>', 'only this organisation\'s reports')
    .option('--format <format>', 'table | jsonl | csv (default table)')
    .action(async (flags: ListFlags) => {
      process.exitCode = await listCommand(ctx, flags);
    });
  incident
    .command('show')
    .description('one report with its stages, history, links, attachments and SLA clocks')
    .argument('<id>', 'report id (from `tocsin incident list`)')
    .option('--format <format>', 'text | json (default text)')
    .action(async (id: string, flags: { format?: string }) => {
      process.exitCode = await showCommand(ctx, id, flags.format ?? 'text');
    });
  incident
    .command('triage')
    .description('move a report along received → triage → incident | duplicate | rejected → resolved, set its category and owner')
    .argument('<id>', 'report id')
    .requiredOption('--status <status>', 'triage | incident | duplicate | rejected | resolved (or the current status to change only category, owner or note)')
    .option('--category <c>', 'C1 (national emergency) to C6 (localised); sets the SLA clocks')
    .option('--owner <email>', 'the analyst who owns it ("" clears it)')
    .option('--duplicate-of <id>', 'with --status duplicate: the report it duplicates')
    .option('--note <text>', 'kept in the history (a first note stops the first-response clock)')
    .option('--by <name>', 'who triages (default user@host)')
    .action(async (id: string, flags: TriageFlags) => {
      process.exitCode = await triageCommand(ctx, id, flags);
    });
  incident
    .command('link')
    .description('link a report by hand to a finding, a campaign or another report (shown on `show` and the report page)')
    .argument('<id>', 'report id')
    .option('--finding <id>', 'a finding id (from `tocsin findings`)')
    .option('--campaign <id>', 'a campaign id (from `tocsin campaign list`)')
    .option('--incident <id>', 'another report id')
    .option('--note <text>', 'why, kept in the history (internal: not shown to the organisation)')
    .option('--by <name>', 'who links (default user@host)')
    .action(async (id: string, flags: LinkFlags) => {
      process.exitCode = await linkCommand(ctx, id, flags);
    });
  incident
    .command('report')
    .description('file a stage-0 report (JSON, as POST /api/incidents takes it), e.g. one taken by phone')
    .requiredOption('--file <path>', 'the report as a JSON file, or - for standard input')
    .option('--by <name>', 'who took the report (default user@host)')
    .action(async (flags: { file: string; by?: string }) => {
      process.exitCode = await reportCommand(ctx, flags);
    });
}

function reportId(raw: string): number {
  return parseIntFlag('ID', raw, 1, Number.MAX_SAFE_INTEGER);
}

export async function listCommand(ctx: CliContext, flags: ListFlags): Promise<number> {
  const format = FORMATS.find((f) => f === (flags.format ?? 'table'));
  if (format === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be one of ${FORMATS.join(', ')}, got ${quoted(flags.format ?? '')}`);
  const database = await openDatabase(ctx.config());
  try {
    const gone = (): boolean => ctx.stdoutClosed?.aborted === true;
    const rows = allIncidents(database.db, { kind: 'all' }, {
      status: flags.status ?? 'open', overdue: flags.overdue === true,
      ...(flags.category === undefined ? {} : { category: flags.category }), ...(flags.org === undefined ? {} : { org: flags.org }),
    });
    let n = 0;
    let first = true;
    for await (const i of rows) {
      // The header only once the filters were accepted (a bad --status prints nothing on stdout).
      if (first) {
        first = false;
        if (format === 'csv') ctx.stdout.write(`${csvRow(CSV_COLUMNS)}\r\n`);
        if (format === 'table') ctx.stdout.write(`${tableLine(TABLE_HEADER)}\n`);
      }
      if (gone()) break;
      n++;
      ctx.stdout.write(format === 'jsonl' ? `${jsonLine(i)}\n` : format === 'csv' ? `${csvRow(csvCells(i))}\r\n` : `${tableLine(tableCells(i))}\n`);
    }
    if (first && format === 'csv') ctx.stdout.write(`${csvRow(CSV_COLUMNS)}\r\n`);
    if (!gone()) {
      if (format === 'table' && n === 0) ctx.stdout.write('no incident reports match\n');
      ctx.stderr.write(`tocsin: ${n} incident report(s)\n`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

/** One JSON object on one line; sanitise 'json' escapes bidi and zero-width characters as well. */
export function jsonLine(v: IncidentSummary | IncidentDetail): string {
  return sanitiseText(JSON.stringify(v), { style: 'json' });
}

/** The same columns as the API download (one definition, in the service). */
export const CSV_COLUMNS = INCIDENT_CSV_COLUMNS;
export const csvCells = incidentCsvCells;

const WIDTHS = [6, 16, 9, 5, 24, 24, 17, 17, 40] as const;
const TABLE_HEADER = ['ID', 'REPORTED', 'STATUS', 'CAT', 'ORG', 'OWNER', 'ACK', 'RESPONSE', 'SUMMARY'];

function tableLine(cells: readonly string[]): string {
  return cells.map((c, i) => {
    const w = WIDTHS[i] ?? 10;
    const t = c.length > w ? `${c.slice(0, w - 1)}…` : c;
    return i === 0 ? t.padStart(w) : t.padEnd(w);
  }).join(' ').trimEnd();
}

function clockText(c: { due: string; at: string | null; overdue: boolean; late: boolean }): string {
  if (c.at !== null) return c.late ? 'met late' : 'met';
  return `${c.overdue ? 'OVERDUE ' : ''}${c.due.slice(5, 16).replace('T', ' ')}`;
}

export function tableCells(i: IncidentSummary): string[] {
  return [
    String(i.id), i.reportedAt.slice(0, 16).replace('T', ' '), i.status, i.category ?? '-', i.org === null ? '-' : sanitiseText(i.org, { max: 60 }),
    i.owner === null ? '-' : sanitiseText(i.owner, { max: 60 }), clockText(i.sla.acknowledge), clockText(i.sla.firstResponse), sanitiseText(i.summary, { max: 80 }),
  ];
}

export async function showCommand(ctx: CliContext, rawId: string, format: string): Promise<number> {
  if (format !== 'text' && format !== 'json') throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be text or json, got ${quoted(format)}`);
  const id = reportId(rawId);
  const database = await openDatabase(ctx.config());
  try {
    const d = await showIncident(database.db, { kind: 'all' }, id);
    ctx.stdout.write(format === 'json' ? `${jsonLine(d)}\n` : `${showText(d)}\n`);
    return 0;
  } finally {
    await database.close();
  }
}

export function showText(d: IncidentDetail): string {
  const s = (v: string | null, max = 200): string => (v === null || v === '' ? '-' : sanitiseText(v, { max }));
  const multi = (v: unknown): string => (typeof v === 'string' && v !== '' ? sanitiseText(v, { max: 4000, keepNewlines: true }).replace(/\n/g, '\n    ') : '-');
  const s0 = d.stage0 as Record<string, unknown>;
  const clock = (name: string, c: IncidentSummary['sla']['acknowledge']): string => `  ${name.padEnd(14)} due ${c.due}${c.at === null ? (c.overdue ? '  OVERDUE' : '') : `, met ${c.at}${c.late ? ' (late)' : ''}`}`;
  return [
    `incident ${d.id}: ${d.status}${d.duplicateOf === null ? '' : ` of ${d.duplicateOf}`}, ${d.category ?? `uncategorised (${d.sla.category} clocks)`}, TLP:${d.tlp}`,
    `  organisation   ${s(d.org, 100)}${d.orgId === null ? ' (not in the registry)' : ` (id ${d.orgId})`}`,
    `  owner          ${s(d.owner, 100)}`,
    `  reporter       ${s(d.reporter.name, 100)} (${s(d.reporter.role, 60)}), ${s(d.reporter.phone, 40)}, ${s(d.reporter.email, 100)}`,
    `  reported       ${d.reportedAt} via ${d.reportedVia} by ${s(d.reportedBy, 100)}`,
    `  detected       ${d.detectedAt}${typeof s0['timeZone'] === 'string' ? ` (${s(s0['timeZone'], 40)})` : ''}${d.ongoing ? ', ONGOING' : ''}`,
    `  types          ${d.types.join(', ')}`,
    `  cves           ${d.cves.length === 0 ? '-' : d.cves.join(', ')}`,
    clock('acknowledge', d.sla.acknowledge),
    clock('first response', d.sla.firstResponse),
    `  what happened\n    ${multi(s0['summary'])}`,
    `  help requested\n    ${multi(s0['helpRequested'])}`,
    `stage 1: ${d.stage1 === null ? 'not given' : `given ${d.stage1At ?? ''}\n    ${sanitiseText(JSON.stringify(d.stage1), { max: 4000 })}`}`,
    `final: ${d.final === null ? 'not given' : `given ${d.finalAt ?? ''}\n    ${sanitiseText(JSON.stringify(d.final), { max: 4000 })}`}`,
    'links:',
    ...(d.links.length === 0 ? ['  -'] : d.links.map((l) => `  ${l.kind} ${l.targetId} (${l.relation})${l.finding === null ? '' : `: ${l.finding.ip}:${l.finding.port ?? '*'} ${s(l.finding.cve, 30)} ${l.finding.state}`}` +
      `${l.campaign === null ? '' : `: ${s(l.campaign.name, 80)}`}${l.incident === null ? '' : `: ${l.incident.status} ${s(l.incident.summary, 60)}`}`)),
    'attachments:',
    ...(d.attachments.length === 0 ? ['  -'] : d.attachments.map((a) => `  ${a.id} ${s(a.filename, 100)} ${a.bytes} bytes ${a.contentType} sha256 ${a.sha256}`)),
    'history:',
    ...d.events.map((e) => `  ${e.at}  ${e.kind.padEnd(10)} by ${s(e.who, 60)}${e.detail === null ? '' : `  ${sanitiseText(JSON.stringify(e.detail), { max: 300 })}`}`),
  ].join('\n');
}

export async function triageCommand(ctx: CliContext, rawId: string, flags: TriageFlags): Promise<number> {
  const id = reportId(rawId);
  const duplicateOf = parseIntFlag('--duplicate-of', flags.duplicateOf, 1, Number.MAX_SAFE_INTEGER);
  const database = await openDatabase(ctx.config());
  try {
    const before = await showIncident(database.db, { kind: 'all' }, id);
    const d = await triageIncident(database.db, staffActor(flags.by ?? defaultBy()), id, {
      status: flags.status, ...(flags.category === undefined ? {} : { category: flags.category }), ...(flags.owner === undefined ? {} : { owner: flags.owner }),
      ...(duplicateOf === undefined ? {} : { duplicateOf }), ...(flags.note === undefined ? {} : { note: flags.note }),
    });
    ctx.stdout.write(`incident ${d.id}: ${before.status} -> ${d.status}${d.category === null ? '' : `, ${d.category}`}${d.owner === null ? '' : `, owner ${sanitiseText(d.owner, { max: 60 })}`}\n`);
    return 0;
  } finally {
    await database.close();
  }
}

/** Exactly one of --finding, --campaign, --incident. */
export function linkTarget(flags: LinkFlags): { kind: (typeof LINK_KINDS)[number]; targetId: number } {
  const given = LINK_KINDS.filter((k) => flags[k] !== undefined);
  const kind = given[0];
  if (given.length !== 1 || kind === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', 'give exactly one of --finding ID, --campaign ID, --incident ID');
  return { kind, targetId: parseIntFlag(`--${kind}`, flags[kind] ?? '', 1, Number.MAX_SAFE_INTEGER) };
}

export async function linkCommand(ctx: CliContext, rawId: string, flags: LinkFlags): Promise<number> {
  const id = reportId(rawId);
  const { kind, targetId } = linkTarget(flags);
  const database = await openDatabase(ctx.config());
  try {
    const d = await linkIncident(database.db, staffActor(flags.by ?? defaultBy()), id, kind, targetId, flags.note === undefined ? {} : { note: flags.note });
    ctx.stdout.write(`incident ${d.id}: linked to ${kind} ${targetId} (${d.links.length} link(s))\n`);
    return 0;
  } finally {
    await database.close();
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_REPORT_BYTES) throw new TocsinError('TOCSIN_INCIDENT_INVALID', `standard input: larger than ${MAX_REPORT_BYTES} bytes: not a stage-0 report`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** The report file's JSON (a binary, oversized or non-JSON file is refused with what it is). */
export async function readReportFile(file: string, stdin: () => Promise<Buffer> = readStdin): Promise<unknown> {
  const name = file === '-' ? 'standard input' : quoted(file);
  let bytes: Buffer;
  if (file === '-') {
    bytes = await stdin();
  } else {
    try {
      bytes = await readFile(file);
    } catch (e) {
      const code = errno(e);
      throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read ${name}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a file' : code === 'EACCES' ? 'permission denied' : (code ?? 'error')}`);
    }
  }
  if (bytes.length > MAX_REPORT_BYTES) throw new TocsinError('TOCSIN_INCIDENT_INVALID', `${name}: larger than ${MAX_REPORT_BYTES} bytes: not a stage-0 report`);
  let text: string;
  try {
    if (bytes.includes(0)) throw new Error('NUL');
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TocsinError('TOCSIN_INCIDENT_INVALID', `${name}: binary, not a UTF-8 JSON text`);
  }
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new TocsinError('TOCSIN_INCIDENT_INVALID', `${name}: not JSON (${sanitiseText(e instanceof Error ? e.message : String(e), { max: 120 })})`);
  }
}

export async function reportCommand(ctx: CliContext, flags: { file: string; by?: string }): Promise<number> {
  const input = await readReportFile(flags.file);
  const database = await openDatabase(ctx.config());
  try {
    const d = await reportIncident(database.db, staffActor(flags.by ?? defaultBy()), input, { via: 'cli' });
    const linked = d.links.filter((l) => l.kind === 'finding').length;
    ctx.stdout.write(`${d.id}\n`);
    ctx.stderr.write(`tocsin: incident ${d.id} received for ${sanitiseText(d.org ?? '-', { max: 80 })}; acknowledge due ${d.sla.acknowledge.due}; ${linked} finding(s) linked\n`);
    return 0;
  } finally {
    await database.close();
  }
}
