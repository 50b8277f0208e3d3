/**
 * The constituency domain's entry: decode import files, tell their format, parse them (pure: bytes in,
 * records and problems out). Types, validation, the import plan and the three formats live beside it.
 */
import { parseConstituencyCsv } from './csv-format.js';
import { parseConstituencyJson } from './json-format.js';
import { mergeRecords } from './plan.js';
import { parseConstituencyRpsl } from './rpsl-format.js';
import type { ImportFormat, ImportProblem, OrgRecord, ParseResult } from './types.js';

export * from './types.js';
export * from './validate.js';
export * from './plan.js';
export { parseConstituencyCsv } from './csv-format.js';
export { parseConstituencyJson } from './json-format.js';
export { parseConstituencyRpsl, splitRpsl } from './rpsl-format.js';

export const IMPORT_FORMATS: readonly ImportFormat[] = ['csv', 'json', 'rpsl'];

/**
 * The text of an import file, or why it is not one: a NUL byte or invalid UTF-8 (a spreadsheet saved as .xlsx,
 * a gzip file, a Latin-1 export) refuses the whole file rather than importing garbage.
 */
export function decodeImportFile(file: string, bytes: Uint8Array): { text: string } | { problem: ImportProblem } {
  const refuse = (error: string): { problem: ImportProblem } => ({ problem: { file, line: 0, raw: '', error } });
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return refuse('a gzip file: decompress it first (gunzip)');
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4) {
    return refuse('a zip archive (an .xlsx workbook?): export it as CSV (UTF-8) first');
  }
  if (bytes.includes(0)) return refuse('a binary file (it contains NUL bytes), not CSV, JSON or RPSL text');
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return refuse('not UTF-8 text (a Latin-1 export? convert it: iconv -f latin1 -t utf-8)');
  }
}

/** The format of a file by its name, else by its first meaningful line. */
export function detectFormat(file: string, text: string): ImportFormat {
  const name = file.toLowerCase();
  if (name.endsWith('.json')) return 'json';
  if (name.endsWith('.csv')) return 'csv';
  if (/(^|[/\\])ripe\.db\.|\.rpsl$|\.db$/.test(name)) return 'rpsl';
  const body = text.replace(/^\ufeff/, '');
  const firstLine = body.split(/\r?\n/).find((l) => l.trim() !== '' && !l.startsWith('#') && !l.startsWith('%')) ?? '';
  if (/^\s*[[{]/.test(firstLine)) return 'json';
  if (/^[A-Za-z][A-Za-z0-9-]*:(\s|$)/.test(firstLine)) return 'rpsl';
  return 'csv';
}

export interface ImportInput {
  readonly file: string;
  readonly text: string;
  readonly format: ImportFormat;
}

/**
 * Parses the inputs of one source together: CSV and JSON files each on their own, RPSL files as one set (their
 * objects refer to each other); records of the same organisation in several files are merged.
 */
export function parseImport(inputs: readonly ImportInput[], opts: { readonly country?: string } = {}): ParseResult {
  const results: ParseResult[] = [];
  const rpsl = inputs.filter((i) => i.format === 'rpsl');
  for (const i of inputs) {
    if (i.format === 'csv') results.push(parseConstituencyCsv(i.file, i.text));
    else if (i.format === 'json') results.push(parseConstituencyJson(i.file, i.text));
  }
  if (rpsl.length > 0) results.push(parseConstituencyRpsl(rpsl.map((i) => ({ file: i.file, text: i.text })), opts));
  const records: OrgRecord[] = [];
  const problems: ImportProblem[] = [];
  const rejected: ImportProblem[] = [];
  const rowsRead = new Map<string, number>();
  const skipped = new Map<string, number>();
  for (const r of results) {
    records.push(...r.records);
    problems.push(...r.problems);
    rejected.push(...r.rejected);
    for (const [f, n] of r.rowsRead) rowsRead.set(f, (rowsRead.get(f) ?? 0) + n);
    for (const [f, n] of r.skipped) skipped.set(f, (skipped.get(f) ?? 0) + n);
  }
  return { records: mergeRecords(records), problems, rowsRead, skipped, rejected };
}
