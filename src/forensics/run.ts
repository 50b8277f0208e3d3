/**
 * The `tocsin forensics` command body, shared by the main CLI (commander) and the standalone bundle
 * (node:util parseArgs): validates options, loads IoC files, runs the analysis, writes the output,
 * and returns the exit code: 0 nothing found with logs covering every campaign window, 1 indicators found,
 * 2 error (an unreadable input, or no Exchange or IIS log found), 3 nothing found but the logs are
 * insufficient for a verdict.
 */
import { appendFile, stat, readFile, writeFile } from 'node:fs/promises';
import { errno, TocsinError } from '../core/errors.js';
import { analyze, type Progress } from './analyze.js';
import type { AnalysisResult } from './types.js';
import { emptyIocs, iocCount, parseIocFile, type IocSet } from './iocs.js';
import { exitCodeOf, formatCsv, formatJsonl, formatJsonlMeta, formatSummary, formatText, escapeText, OUTPUT_FORMATS, type OutputFormat } from './report.js';

export interface ForensicsOptions {
  readonly paths: readonly string[];
  readonly format?: string;
  readonly output?: string;
  readonly since?: string;
  readonly iocs?: readonly string[];
  /** Show progress on stderr (default: when stderr is a TTY). */
  readonly progress?: boolean;
}

export interface ForensicsIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown; readonly isTTY?: boolean };
}

/**
 * JSONL records formatted per write. The whole listing as one string (up to 500,000 records, ~150 MB)
 * was held three times over (lines, joined text, encoded buffer) at the end of a large run.
 */
const WRITE_BATCH = 10_000;

/** The output in pieces: process.stdout writes to files and pipes synchronously on Linux, so memory stays bounded. */
function* outputParts(format: OutputFormat, result: AnalysisResult): Generator<string> {
  if (format === 'text') yield formatText(result);
  else if (format === 'csv') yield formatCsv(result.findings);
  else {
    yield formatJsonlMeta(result);
    for (let i = 0; i < result.findings.length; i += WRITE_BATCH) yield formatJsonl(result.findings.slice(i, i + WRITE_BATCH));
  }
}

/** Largest IoC file read (64 MiB). */
const MAX_IOC_FILE = 64 * 1024 * 1024;

function fail(message: string, details?: readonly string[]): never {
  throw new TocsinError('TOCSIN_FORENSICS_INPUT', message, details === undefined ? undefined : { details });
}

export function parseSince(s: string): Date {
  const m = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(s.trim());
  const d = m === null ? new Date(NaN) : new Date(/^\d{4}-\d{2}-\d{2}$/.test(s.trim()) ? `${s.trim()}T00:00:00Z` : s.trim());
  if (Number.isNaN(d.getTime())) fail(`--since: not a date: ${JSON.stringify(s)} (use YYYY-MM-DD or an ISO 8601 time)`);
  return d;
}

export async function loadIocs(files: readonly string[], warn: (s: string) => void): Promise<IocSet | null> {
  if (files.length === 0) return null;
  let set = emptyIocs();
  for (const f of files) {
    let st;
    try {
      st = await stat(f);
    } catch (e: unknown) {
      fail(`--iocs: cannot read ${f}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!st.isFile()) fail(`--iocs: not a file: ${f}`);
    if (st.size > MAX_IOC_FILE) fail(`--iocs: ${f} is larger than ${MAX_IOC_FILE} bytes`);
    const text = await readFile(f, 'utf8');
    // Never lose a list silently: a file that yields nothing is an error, with what was not understood.
    const alone = parseIocFile(text, f);
    if (iocCount(alone) === 0) fail(`--iocs: no indicator understood in ${f}`, alone.warnings.slice(0, 10));
    set = parseIocFile(text, f, set);
  }
  for (const w of set.warnings) warn(`tocsin forensics: iocs: ${w}\n`);
  for (const u of set.understood) warn(`tocsin forensics: iocs: ${u}\n`);
  return set;
}

/**
 * `--output x.csv` without --format writes CSV (as `tocsin scan`, `results` and `report` do), `.jsonl`/`.ndjson`
 * JSONL; a --format that contradicts such an extension is refused rather than writing one format under
 * another's name. Kept here (not in the CLI) so the standalone bundle behaves the same.
 */
export function formatFor(flag: string | undefined, output: string | undefined): string {
  const m = output === undefined ? null : /\.(csv|jsonl|ndjson)$/i.exec(output.replace(/^.*[\\/]/, ''));
  const implied = m === null ? undefined : m[1]?.toLowerCase() === 'csv' ? 'csv' : 'jsonl';
  if (flag === undefined) return implied ?? 'text';
  if (implied !== undefined && flag !== implied) fail(`--format ${JSON.stringify(flag.slice(0, 20))} contradicts --output (a .${m?.[1] ?? ''} file gets ${implied}): drop --format, or name the file for the format`);
  return flag;
}

/**
 * Runs the kit. It keeps its exit codes (0/1/2/3) whichever entry point runs it, `tocsin forensics` or the
 * standalone bundle: every error leaves as a TocsinError that exits 2, never as `tocsin`'s generic 70.
 */
export async function runForensics(o: ForensicsOptions, io: ForensicsIo): Promise<number> {
  try {
    return await runUnguarded(o, io);
  } catch (e: unknown) {
    throw forensicsError(e);
  }
}

/**
 * An error of the kit as a coded one: a file-system error (a path the user gave) is TOCSIN_FORENSICS_INPUT, anything
 * else uncoded is a bug, TOCSIN_FORENSICS_INTERNAL, with the stack's first frames as details for the report.
 * A closed stdout (EPIPE) is passed on as it is: the entry point treats it as the reader going away.
 */
export function forensicsError(e: unknown): unknown {
  if (e instanceof TocsinError || errno(e) === 'EPIPE') return e;
  if (e instanceof Error && errno(e) !== undefined && 'syscall' in e) {
    return new TocsinError('TOCSIN_FORENSICS_INPUT', e.message, { cause: e });
  }
  const [first = 'unknown error', ...frames] = (e instanceof Error ? (e.stack ?? e.message) : String(e)).split('\n');
  return new TocsinError('TOCSIN_FORENSICS_INTERNAL', first, { details: frames.slice(0, 8).map((f) => f.trim()), cause: e });
}

async function runUnguarded(o: ForensicsOptions, io: ForensicsIo): Promise<number> {
  const format = formatFor(o.format, o.output) as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) fail(`--format must be one of ${OUTPUT_FORMATS.join(', ')}, not ${JSON.stringify(o.format)}`);
  if (o.paths.length === 0) fail('give at least one PATH (a folder, a log file, a .zip or a .gz)');
  const missing: string[] = [];
  for (const p of o.paths) {
    try {
      await stat(p);
    } catch {
      missing.push(p);
    }
  }
  if (missing.length > 0) fail('input path(s) not found', missing);
  const since = o.since === undefined ? null : parseSince(o.since);
  const iocs = await loadIocs(o.iocs ?? [], (s) => io.stderr.write(s));

  const showProgress = o.progress ?? io.stderr.isTTY === true;
  let lastLen = 0;
  let lastAt = 0;
  const onProgress = showProgress
    ? (p: Progress): void => {
        // At most four updates a second: an install tree has a hundred thousand files.
        const now = Date.now();
        if (now - lastAt < 250) return;
        lastAt = now;
        const line = `  ${p.files} file(s), ${(p.bytes / 1e6).toFixed(0)} MB: ${escapeText(p.current).slice(-60)}`;
        io.stderr.write(`\r${line.padEnd(lastLen)}`);
        lastLen = line.length;
      }
    : undefined;
  const result = await analyze({ paths: o.paths, since, iocs, ...(onProgress === undefined ? {} : { onProgress }) });
  if (showProgress && lastLen > 0) io.stderr.write(`\r${' '.repeat(lastLen)}\r`);

  if (o.output !== undefined) {
    try {
      let first = true;
      for (const part of outputParts(format, result)) {
        if (first) await writeFile(o.output, part, 'utf8');
        else await appendFile(o.output, part, 'utf8');
        first = false;
      }
    } catch (e: unknown) {
      fail(`--output: cannot write ${o.output}: ${e instanceof Error ? e.message : String(e)}`);
    }
    io.stderr.write(formatSummary(result));
    io.stderr.write(`written to ${o.output}\n`);
  } else {
    for (const part of outputParts(format, result)) io.stdout.write(part);
    if (format !== 'text') {
      io.stderr.write(formatSummary(result));
      for (const n of result.notices.slice(0, 50)) io.stderr.write(`  ${n.level}: ${escapeText(n.line === null ? n.file : `${n.file}:${n.line}`)}: ${escapeText(n.message)}\n`);
    }
  }
  return exitCodeOf(result);
}
