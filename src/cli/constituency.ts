/**
 * `tocsin constituency import FILE... [--source NAME] [--format auto|csv|json|rpsl] [--country CC] [--as NAME]`
 * and `tocsin constituency export [--format csv|json] [--output FILE]`, `tocsin constituency audit`.
 * Thin: read files → src/services/constituency.ts → print. Every file named must be readable before anything
 * is imported; a file refused whole (binary, not the format) leaves its source unchanged and makes the command
 * exit 65 after the others went in; rows with bad values are listed with file:line and the rest goes in.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import type { CliContext } from './context.js';
import { outputFormat, parseIntFlag, type FormatByExtension } from './args.js';
import { errno, TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { IMPORT_FORMATS, type ImportFormat, type ImportProblem } from '../constituency/index.js';
import { openDatabase } from '../platform/db/connect.js';
import { createConstituencyStore } from '../platform/db/constituency-store.js';
import { changeAuthor, exportCsv, exportJson, importConstituency, type FileReport, type ImportFileBytes } from '../services/constituency.js';

export interface ImportFlags {
  source?: string;
  format?: string;
  country?: string;
  as?: string;
}

/** Problems listed per file; the count says how many more there were. */
const MAX_LISTED_PROBLEMS = 1000;

const show = (s: string, max = 200): string => sanitiseText(s, { max });

export function register(program: Command, ctx: CliContext): void {
  const c = program.command('constituency').description('the constituency registry: import organisations, networks, ASNs, domains and contacts; export them');
  c.command('import')
    .description('import constituency files (CSV by header name, JSON, RIPE RPSL split files) as a source: its earlier import is replaced, manual entries are kept')
    .argument('<file...>', 'files to import')
    .option('--source <name>', 'source name (default: the file name; RPSL files: "rpsl"); a re-import of a source replaces only that source\'s imported entries')
    .option('--format <format>', 'auto | csv | json | rpsl (default auto: by file name, then content)')
    .option('--country <cc>', 'RPSL: keep only inetnum/inet6num objects of this country, their organisations and those organisations\' aut-nums')
    .option('--as <name>', 'record the changes as made by NAME (default: the OS user)')
    .action(async (files: string[], flags: ImportFlags) => {
      process.exitCode = await importCommand(ctx, files, flags);
    });
  c.command('export')
    .description('export the registry (every layer merged) as CSV or JSON; the JSON reads back with `constituency import`')
    .option('--format <format>', 'csv | json (default: from the --output extension, else json)')
    .option('--output <file>', 'write to FILE instead of stdout')
    .action(async (flags: { format?: string; output?: string }) => {
      process.exitCode = await exportCommand(ctx, flags);
    });
  c.command('audit')
    .description('the registry\'s change history, newest first: who changed what, when, before and after')
    .option('--org <name>', 'only this organisation\'s changes')
    .option('--limit <n>', 'at most N changes (default 100)')
    .option('--format <format>', 'table | jsonl (default table)')
    .action(async (flags: { org?: string; limit?: string; format?: string }) => {
      process.exitCode = await auditCommand(ctx, flags);
    });
}

function readInputs(files: readonly string[]): ImportFileBytes[] {
  const problems: string[] = [];
  const out: ImportFileBytes[] = [];
  for (const f of files) {
    try {
      out.push({ name: f, bytes: readFileSync(f) });
    } catch (e) {
      problems.push(`${show(f)}: ${errno(e) ?? (e instanceof Error ? e.message : String(e))}`);
    }
  }
  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read ${problems.length === 1 ? 'a constituency file' : `${problems.length} constituency files`}; nothing was imported`, { details: problems });
  }
  return out;
}

export async function importCommand(ctx: CliContext, files: readonly string[], flags: ImportFlags): Promise<number> {
  const format = flags.format ?? 'auto';
  if (format !== 'auto' && !IMPORT_FORMATS.includes(format as ImportFormat)) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be auto, ${IMPORT_FORMATS.join(', ')}; got ${JSON.stringify(show(format, 20))}`);
  }
  const who = changeAuthor(flags.as);
  const inputs = readInputs(files);
  const database = await openDatabase(ctx.config());
  try {
    const report = await importConstituency(createConstituencyStore(database.db), {
      files: inputs,
      format: format as ImportFormat | 'auto',
      who,
      ...(flags.source === undefined ? {} : { source: flags.source }),
      ...(flags.country === undefined ? {} : { country: flags.country }),
    });
    for (const f of report.files) ctx.stdout.write(renderFile(f));
    for (const s of report.sources) {
      if (s.applied === null) continue;
      const a = s.applied;
      ctx.stdout.write(`source ${show(s.source, 100)}: organisations +${a.orgsCreated} ~${a.orgsUpdated} -${a.orgsRemoved}, entries +${a.entriesAdded} ~${a.entriesChanged} -${a.entriesRemoved}` +
        `${a.orgsKept.length > 0 ? `; kept ${a.orgsKept.length} organisation(s) no longer in the source because manual entries hang on them: ${a.orgsKept.slice(0, 5).map((n) => show(n, 60)).join(', ')}` : ''}\n`);
    }
    const refused = report.files.filter((f) => f.rejected !== null);
    if (refused.length > 0) {
      throw new TocsinError('TOCSIN_CONSTITUENCY_FILE_REJECTED', `${refused.length} file(s) refused; their sources were left unchanged`, {
        details: refused.map((f) => `${show(f.file)}: ${show(f.rejected?.error ?? '', 300)}`),
      });
    }
    return 0;
  } finally {
    await database.close();
  }
}

export function renderFile(f: FileReport): string {
  const lines: string[] = [];
  const head = `${show(f.file)} (${f.format ?? 'unreadable'}, source ${show(f.source, 100)})`;
  if (f.rejected !== null) {
    lines.push(`${head}: refused: ${show(f.rejected.error, 300)}`);
  } else {
    lines.push(`${head}: ${f.rowsRead} rows read, ${f.imported} imported, ${f.unchanged} unchanged, ${f.setAside} set aside` +
      `${f.skipped > 0 ? `, ${f.skipped} skipped` : ''}, ${f.problems.length} problem(s)`);
  }
  for (const p of f.problems.slice(0, MAX_LISTED_PROBLEMS)) lines.push(...renderProblem(p));
  if (f.problems.length > MAX_LISTED_PROBLEMS) lines.push(`  ... and ${f.problems.length - MAX_LISTED_PROBLEMS} more problem(s)`);
  return `${lines.join('\n')}\n`;
}

function renderProblem(p: ImportProblem): string[] {
  const out = [`  ${show(p.file)}:${p.line}: ${show(p.error, 300)}`];
  const raw = p.raw.split('\n')[0] ?? '';
  if (raw !== '') out.push(`    ${sanitiseText(raw, { max: 160, style: 'escape' })}`);
  return out;
}

const EXPORT_BY_EXTENSION: FormatByExtension<'csv' | 'json'> = { '.csv': 'csv', '.json': 'json' };

export async function exportCommand(ctx: CliContext, flags: { format?: string; output?: string }): Promise<number> {
  const format = outputFormat(flags.format, flags.output, EXPORT_BY_EXTENSION, 'json');
  if (format !== 'csv' && format !== 'json') throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be csv or json, got ${JSON.stringify(show(format, 20))}`);
  const database = await openDatabase(ctx.config());
  try {
    const orgs = await createConstituencyStore(database.db).exportAll();
    const text = format === 'csv' ? exportCsv(orgs) : exportJson(orgs);
    if (flags.output === undefined) ctx.stdout.write(text);
    else {
      try {
        writeFileSync(flags.output, text);
      } catch (e) {
        throw new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write ${show(flags.output)}: ${errno(e) ?? String(e)}`, { cause: e });
      }
    }
    ctx.stderr.write(`tocsin: exported ${orgs.length} organisation(s) as ${format}${flags.output === undefined ? '' : ` to ${show(flags.output)}`}\n`);
    return 0;
  } finally {
    await database.close();
  }
}

export async function auditCommand(ctx: CliContext, flags: { org?: string; limit?: string; format?: string }): Promise<number> {
  const format = flags.format ?? 'table';
  if (format !== 'table' && format !== 'jsonl') throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be table or jsonl, got ${JSON.stringify(show(format, 20))}`);
  const limit = parseIntFlag('--limit', flags.limit, 1, 1_000_000) ?? 100;
  const database = await openDatabase(ctx.config());
  try {
    const rows = await createConstituencyStore(database.db).audit({ limit, ...(flags.org === undefined ? {} : { org: flags.org }) });
    if (format === 'jsonl') for (const r of rows) ctx.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      for (const r of rows) {
        const what = JSON.stringify(r.after ?? r.before);
        ctx.stdout.write(`${r.at}  ${show(r.who, 30).padEnd(16)} ${r.action.padEnd(6)} ${r.entity.padEnd(12)} ${show(r.source, 30).padEnd(14)} ${show(what, 120)}\n`);
      }
      if (rows.length === 0) ctx.stdout.write('no changes recorded\n');
    }
    return 0;
  } finally {
    await database.close();
  }
}
