/**
 * Record output for `tocsin scan`: jsonl (the contract, one ScanRecord per line), csv (RFC 4180,
 * spreadsheet-safe cells) and table (for humans). Every value that came from a scanned host is hostile:
 * JSON escapes it by construction, csv neutralises formula prefixes, and the table replaces control
 * characters (no terminal escape sequence from a host ever reaches a terminal).
 * Writers respect the stream's back-pressure.
 */
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type { ScanRecord } from '../core/scan-record.js';
import { TocsinError } from '../core/errors.js';
import { CSV_EOL, csvRow } from '../core/csv.js';

export type OutputFormat = 'jsonl' | 'csv' | 'table';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['jsonl', 'csv', 'table'];

export function parseFormat(text: string): OutputFormat {
  const f = OUTPUT_FORMATS.find((x) => x === text);
  if (f === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--format: ${JSON.stringify(text)} is not one of ${OUTPUT_FORMATS.join(', ')}`);
  return f;
}

export interface RecordWriter {
  write(r: ScanRecord): Promise<void>;
  /** Flushes; does not end the underlying stream (stdout must stay open). */
  close(): Promise<void>;
}

export const CSV_COLUMNS = [
  'ip', 'port', 'hostname', 'tls', 'product', 'edition', 'build', 'buildPrecision', 'cu', 'su',
  'vulnerable', 'indeterminate', 'status', 'scannedAt', 'evidence', 'notes',
] as const;

/** One line of JSONL (no trailing newline). Field order follows the contract. */
export function toJsonLine(r: ScanRecord): string {
  return JSON.stringify({
    ip: r.ip, port: r.port, hostname: r.hostname, tls: r.tls, product: r.product, edition: r.edition,
    build: r.build, buildPrecision: r.buildPrecision, cu: r.cu, su: r.su, vulnerable: r.vulnerable,
    indeterminate: r.indeterminate, evidence: r.evidence, scannedAt: r.scannedAt, status: r.status, notes: r.notes,
  });
}

function evidenceText(r: ScanRecord): string {
  return r.evidence.map((e) => `${e.detector} ${e.where}${e.name === undefined ? '' : ` ${e.name}`}: ${e.excerpt}`).join(' | ');
}

export function toCsvCells(r: ScanRecord): readonly string[] {
  return [
    r.ip, String(r.port), r.hostname ?? '', String(r.tls), r.product ?? '', r.edition ?? '', r.build ?? '',
    r.buildPrecision ?? '', r.cu ?? '', r.su ?? '', r.vulnerable.join(' '), r.indeterminate.join(' '),
    r.status === null ? '' : String(r.status), r.scannedAt, evidenceText(r), r.notes.join(' | '),
  ];
}

/** Replace control characters (C0, DEL, C1) and cap: for terminal output of hostile text. */
export function safeText(s: string, max = 80): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

const TABLE_COLS: ReadonlyArray<readonly [string, number]> = [
  ['ADDRESS', 22], ['TLS', 3], ['PRODUCT', 18], ['BUILD', 14], ['PREC', 5], ['EDITION', 20], ['CU', 9], ['SU', 9], ['VULN', 4], ['INDET', 5],
];

function pad(s: string, w: number): string {
  const t = s.length > w ? `${s.slice(0, w - 1)}…` : s;
  return t.padEnd(w);
}

export function toTableRow(r: ScanRecord): string {
  const addr = r.ip.includes(':') ? `[${r.ip}]:${r.port}` : `${r.ip}:${r.port}`;
  const cells = [
    addr, r.tls ? 'yes' : 'no', r.product ?? '-', r.build ?? '-', r.buildPrecision ?? '-', r.edition ?? '-', r.cu ?? '-', r.su ?? '-',
    String(r.vulnerable.length), String(r.indeterminate.length),
  ].map((c) => safeText(c));
  const head = cells.map((c, i) => pad(c, TABLE_COLS[i]?.[1] ?? 10)).join(' ');
  const host = r.hostname === null ? '' : ` ${safeText(r.hostname, 60)}`;
  const cves = r.vulnerable.length === 0 ? '' : ` ${safeText(r.vulnerable.slice(0, 4).join(','), 60)}${r.vulnerable.length > 4 ? ',…' : ''}`;
  return `${head}${host}${cves}`.trimEnd();
}

export function tableHeader(): string {
  // The free-form tail of each row: the hostname (when given) and the first vulnerable CVEs.
  return `${TABLE_COLS.map(([n, w]) => pad(n, w)).join(' ')} HOSTNAME / VULNERABLE CVES`;
}

export function createRecordWriter(format: OutputFormat, out: Writable): RecordWriter {
  let started = false;
  // CSV rows end with CRLF (RFC 4180); jsonl and table lines with LF.
  const eol = format === 'csv' ? CSV_EOL : '\n';
  const put = async (line: string): Promise<void> => {
    if (!out.write(`${line}${eol}`)) await once(out, 'drain');
  };
  return {
    async write(r) {
      if (!started) {
        started = true;
        if (format === 'csv') await put(csvRow(CSV_COLUMNS));
        if (format === 'table') await put(tableHeader());
      }
      if (format === 'jsonl') await put(toJsonLine(r));
      else if (format === 'csv') await put(csvRow(toCsvCells(r)));
      else await put(toTableRow(r));
    },
    async close() {
      // Headers even when nothing answered, so an empty result still says what it is.
      if (!started && format === 'csv') {
        started = true;
        await put(csvRow(CSV_COLUMNS));
      }
      if (!started && format === 'table') {
        started = true;
        await put(tableHeader());
        await put('(no host answered HTTP or HTTPS)');
      }
    },
  };
}
