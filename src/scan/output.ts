/**
 * Record output for `tocsin scan`: jsonl (the contract, one ScanRecord per line), csv (RFC 4180,
 * spreadsheet-safe cells) and table (for humans). Every value that came from a scanned host is hostile:
 * JSON escapes it by construction, csv neutralises formula prefixes, and the table replaces control
 * characters (no terminal escape sequence from a host ever reaches a terminal) and caps every cell.
 * Writers respect the stream's back-pressure.
 */
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type { ScanRecord } from '../core/contracts/scan-record.js';
import type { Evidence } from '../core/contracts/evidence.js';
import { parseIp } from '../core/ip.js';
import { TocsinError } from '../core/errors.js';
import { CSV_EOL, csvRow } from '../core/csv.js';
import type { HeadlineCve, Product } from '../products/sdk.js';
import { PRODUCTS } from '../products/registry.js';
import { sanitiseText } from '../core/text.js';

export type OutputFormat = 'jsonl' | 'csv' | 'table';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['jsonl', 'csv', 'table'];

export function parseFormat(text: string): OutputFormat {
  const f = OUTPUT_FORMATS.find((x) => x === text);
  if (f === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--format: ${JSON.stringify(text)} is not one of ${OUTPUT_FORMATS.join(', ')}`);
  return f;
}

export interface RecordWriter {
  write(r: ScanRecord): Promise<void>;
  /**
   * The records of one batch, in order: the same bytes as write() for each, handed to the stream in one
   * write (one write per line cost a libuv file-system request and a callback per host on big scans).
   */
  writeMany(records: readonly ScanRecord[]): Promise<void>;
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
    indeterminate: r.indeterminate, evidence: r.evidence.map(evidenceFields), scannedAt: r.scannedAt, status: r.status, notes: r.notes,
  });
}

/**
 * Evidence with its keys in contract order. Records read back from the database come from jsonb, which
 * reorders object keys (shortest first); without this, `tocsin results` (and a resumed --output) would
 * print the same evidence as different bytes than the scan did.
 */
function evidenceFields(e: Evidence): Evidence {
  return { detector: e.detector, probe: e.probe, url: e.url, where: e.where, ...(e.name === undefined ? {} : { name: e.name }), excerpt: e.excerpt };
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

/** Hostile text for one terminal line: unsafe characters (core/text.ts) become '?', capped at `max`. */
export function safeText(s: string, max = 80): string {
  return sanitiseText(s, { max });
}

// ---------------------------------------------------------------------------------------------------
// Headline CVEs and the table

/**
 * How the table shows records: the products' headline CVEs (from their data: cve-groups.csv for
 * Exchange), in display order, and each product's cells. Built once per writer (never per row); the
 * default is built from the registered products on first use of a table, so jsonl and csv output never
 * read the groups.
 */
export interface TableStyle {
  readonly products: readonly Product[];
  /** Headline CVEs of every product, product by product, in display order. */
  readonly headline: readonly HeadlineCve[];
  readonly rank: ReadonlyMap<string, number>;
  /** Headline group name → its CVE ids, and CVE id → its headline group. */
  readonly groupMembers: ReadonlyMap<string, readonly string[]>;
  readonly groupOf: ReadonlyMap<string, string>;
  /** Sort keys of CVE ids seen so far (a few hundred: the ids come from the knowledge bases). */
  readonly keys: Map<string, number>;
}

export function tableStyle(products: readonly Product[]): TableStyle {
  const headline = products.flatMap((p) => p.cveGroups().headline);
  const groupMembers = new Map<string, string[]>();
  const groupOf = new Map<string, string>();
  for (const h of headline) {
    if (h.group === null) continue;
    groupOf.set(h.cve, h.group);
    groupMembers.set(h.group, [...(groupMembers.get(h.group) ?? []), h.cve]);
  }
  return { products, headline, rank: new Map(headline.map((h, i) => [h.cve, i])), groupMembers, groupOf, keys: new Map() };
}

let registered: TableStyle | undefined;

/** The style of the registered products (reads their CVE groups once per thread). */
export function defaultTableStyle(): TableStyle {
  registered ??= tableStyle(PRODUCTS);
  return registered;
}

const NOT_A_CVE = 1e13;

/** Smaller first: headline CVEs by their rank, then CVE ids newest first; anything else last. */
function displayKey(id: string, style: TableStyle): number {
  let k = style.keys.get(id);
  if (k !== undefined) return k;
  const m = /^CVE-(\d{4})-(\d{1,8})$/.exec(id);
  k = style.rank.get(id) ?? (m === null ? NOT_A_CVE : 1e3 + (9999 - Number(m[1])) * 1e8 + (99_999_999 - Number(m[2])));
  if (style.keys.size < 100_000) style.keys.set(id, k);
  return k;
}

/**
 * Display order of CVE ids: headline CVEs first (in the products' data order), then the others newest
 * first (by year, then number), then anything that is not a CVE id (advisories) by name.
 */
export function compareCveDisplay(a: string, b: string, style: TableStyle = defaultTableStyle()): number {
  const d = displayKey(a, style) - displayKey(b, style);
  return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
}

/** What the CVE cell of one row can show: its first display items and how many CVEs there are in all. */
interface CveItems {
  readonly items: ReadonlyArray<{ readonly text: string; readonly covers: number }>;
  readonly total: number;
}

/** The CVE cell is at most ~60 characters wide, and an item at least 10: a row keeps no more than this. */
const KEEP_ITEMS = 8;

/**
 * The first KEEP_ITEMS display items of a vulnerable list: fully vulnerable headline groups by name (at
 * the rank of their first CVE), every other CVE by id, in display order. A bounded selection, not a
 * sort of the whole list: this runs once per answered host when the output is a table.
 */
function cveItems(vulnerable: readonly string[], style: TableStyle): CveItems {
  const set = new Set(vulnerable);
  const named = new Set<string>();
  const best: Array<{ key: number; id: string; covers: number }> = [];
  const offer = (key: number, id: string, covers: number): void => {
    const last = best[best.length - 1];
    if (best.length >= KEEP_ITEMS && last !== undefined && (key > last.key || (key === last.key && id >= last.id))) return;
    let i = best.length;
    while (i > 0) {
      const prev = best[i - 1];
      if (prev === undefined || prev.key < key || (prev.key === key && prev.id < id)) break;
      i--;
    }
    best.splice(i, 0, { key, id, covers });
    if (best.length > KEEP_ITEMS) best.pop();
  };
  for (const [group, members] of style.groupMembers) {
    if (members.every((m) => set.has(m))) {
      named.add(group);
      offer(displayKey(members[0] ?? '', style), group, members.length);
    }
  }
  for (const cve of set) {
    const g = style.groupOf.get(cve);
    if (g !== undefined && named.has(g)) continue;
    offer(displayKey(cve, style), cve, 1);
  }
  return { items: best.map(({ id, covers }) => ({ text: safeText(id, 30), covers })), total: set.size };
}

function fitCves(c: CveItems, width: number): string {
  let text = '';
  let covered = 0;
  for (const item of c.items) {
    const next = text === '' ? item.text : `${text},${item.text}`;
    const restAfter = c.total - covered - item.covers;
    const suffix = restAfter === 0 ? '' : ` +${restAfter}`;
    if (next.length + suffix.length > width) break;
    text = next;
    covered += item.covers;
  }
  const rest = c.total - covered;
  if (rest === 0) return text;
  return text === '' ? `+${rest}` : `${text} +${rest}`;
}

/**
 * The vulnerable CVEs of one record for a narrow cell, headline first: a headline group whose CVEs are
 * ALL vulnerable is shown by its name (ProxyLogon), a partly vulnerable group by its CVE ids; as many as
 * fit in `width`, then "+N" for the rest (the VULN column has the full count).
 */
export function cveCell(vulnerable: readonly string[], width: number, style: TableStyle = defaultTableStyle()): string {
  return fitCves(cveItems(vulnerable, style), width);
}

/** Widest a table line may be: it must fit a 100-column terminal. */
export const TABLE_WIDTH = 100;

/** "2016 CU19", "2010 SP3 RU32", "SE RTM", "Online", "no (iis)": what the host runs, briefly (the product says how). */
function productCell(r: ScanRecord, owner: Product | undefined, style: TableStyle): string {
  if (owner !== undefined) return owner.display.cell(r.edition, r.cu);
  if (r.product === null) return 'no';
  for (const p of style.products) {
    const label = p.display.related[r.product];
    if (label !== undefined) return label;
  }
  return `no (${r.product})`;
}

function addressOf(r: ScanRecord): string {
  return r.ip.includes(':') ? `[${r.ip}]:${r.port}` : `${r.ip}:${r.port}`;
}

/** A buffered table row: the sort key and its cells (already free of control characters and capped). */
interface TableRow {
  readonly family: number;
  readonly value: bigint;
  readonly port: number;
  readonly ip: string;
  readonly cells: readonly string[];
  /** Only what the CVE cell can show (not the whole list: a big table holds many rows). */
  readonly cves: CveItems;
  /** The product that claimed the service (its own id names the record), if any. */
  readonly owner: Product | undefined;
  readonly headlineVulnerable: boolean;
}

/** Numeric order of addresses (IPv4 before IPv6), then port; an unparseable address sorts last by text. */
function compareRows(a: TableRow, b: TableRow): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  if (a.family === 9 && a.ip !== b.ip) return a.ip < b.ip ? -1 : 1;
  return a.port - b.port;
}

function tableRow(r: ScanRecord, style: TableStyle): TableRow {
  const ip = parseIp(r.ip);
  const owner = r.product === null ? undefined : style.products.find((p) => p.id === r.product);
  return {
    family: ip?.family ?? 9,
    value: ip === null ? 0n : BigInt(ip.value),
    port: r.port,
    ip: r.ip,
    // ADDRESS, HOSTNAME, EXCHANGE, BUILD, PREC, VULN, INDET
    cells: [
      safeText(addressOf(r), 60),
      r.hostname === null ? '-' : safeText(r.hostname, 64),
      safeText(productCell(r, owner, style), 40),
      safeText(r.build ?? '-', 40),
      safeText(r.buildPrecision ?? '-', 10),
      String(r.vulnerable.length),
      String(r.indeterminate.length),
    ],
    cves: cveItems(r.vulnerable, style),
    owner,
    headlineVulnerable: r.vulnerable.some((c) => style.rank.has(c)),
  };
}

/** Column headers; the third names the product when only one is registered ("EXCHANGE"), else PRODUCT. */
function headOf(style: TableStyle): readonly string[] {
  const only = style.products.length === 1 ? style.products[0] : undefined;
  return ['ADDRESS', 'HOSTNAME', only?.display.column ?? 'PRODUCT', 'BUILD', 'PREC', 'VULN', 'INDET'];
}
const CVE_HEAD = 'VULNERABLE CVES (headline first)';
/** Column widths: [min, max] (the address and hostname widths follow the data within them). */
const WIDTH: ReadonlyArray<readonly [number, number]> = [[7, 47], [8, 20], [8, 14], [5, 12], [5, 5], [4, 4], [5, 5]];
// (47 = the longest address: "[" + 39 characters of IPv6 + "]:65535".)
const RIGHT = new Set([5, 6]);
const MIN_CVE_WIDTH = 16;

/** Greedy word wrap (for generated footer text that may outgrow a line). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

function fit(s: string, w: number, right: boolean): string {
  const t = s.length > w ? `${s.slice(0, Math.max(w - 1, 0))}…` : s;
  return right ? t.padStart(w) : t.padEnd(w);
}

/**
 * The whole table for reading: header, rows sorted by address then port, and a footer that says what
 * the counts mean. At most TABLE_WIDTH characters a line: the hostname column appears only when some
 * host was given by name, and the CVE column takes the width that is left.
 */
export function renderTable(records: readonly ScanRecord[], style: TableStyle = defaultTableStyle()): string[] {
  return renderRows(records.map((r) => tableRow(r, style)), style);
}

function renderRows(unsorted: readonly TableRow[], style: TableStyle): string[] {
  const HEAD = headOf(style);
  const rows = [...unsorted].sort(compareRows);
  const withHost = rows.some((r) => r.cells[1] !== '-');
  const cols = HEAD.map((_, i) => i).filter((i) => i !== 1 || withHost);
  const widths = new Map<number, number>();
  for (const i of cols) {
    const [min, max] = WIDTH[i] ?? [4, 12];
    const data = Math.max(0, ...rows.map((r) => (r.cells[i] ?? '').length));
    widths.set(i, Math.min(Math.max(min, (HEAD[i] ?? '').length, data), max));
  }
  const used = (): number => cols.reduce((n, i) => n + (widths.get(i) ?? 0) + 1, 0);
  const shrink = (i: number, min: number, cveRoom: number): void => {
    const short = cveRoom - (TABLE_WIDTH - used());
    if (short > 0 && cols.includes(i)) widths.set(i, Math.max(min, (widths.get(i) ?? 0) - short));
  };
  // An address is never cut. Hostnames give way first so the CVE column stays readable; with a long
  // IPv6 address, the edition/CU and the hostname give way further, down to room for "+NNN".
  shrink(1, 8, MIN_CVE_WIDTH);
  shrink(1, 8, 5);
  shrink(2, 9, 5);
  shrink(1, 4, 5);
  const cveWidth = Math.max(TABLE_WIDTH - used(), 1);
  const line = (cells: readonly string[], cve: string): string =>
    `${cols.map((i) => fit(cells[i] ?? '', widths.get(i) ?? 0, RIGHT.has(i))).join(' ')} ${fit(cve, cveWidth, false)}`.trimEnd();
  const out = [line(HEAD, CVE_HEAD)];
  if (rows.length === 0) {
    out.push('(no host answered HTTP or HTTPS)');
    return out;
  }
  for (const r of rows) out.push(line(r.cells, fitCves(r.cves, cveWidth)));
  const identified = rows.filter((r) => r.owner !== undefined);
  const anyVuln = identified.filter((r) => r.cves.total > 0).length;
  const headlineVuln = identified.filter((r) => r.headlineVulnerable).length;
  const perProduct = style.products.map((p) => `${identified.filter((r) => r.owner === p).length} ${p.report.serversLabel}`).join('; ');
  // Headline names as the data gives them: a group by its name, a lone CVE by its id.
  const names: string[] = [];
  for (const h of style.headline) {
    const name = h.group ?? h.cve;
    if (!names.includes(name)) names.push(name);
  }
  out.push(
    '',
    `${rows.length} ip:port answered; ${perProduct}; ${anyVuln} with at least one CVE vulnerable`,
    `(${headlineVuln} with a headline CVE vulnerable, which is what \`tocsin report\` counts as vulnerable).`,
    'VULN: how many CVEs of the knowledge base (every CVE, not only headline ones) are vulnerable for',
    'the build seen; INDET: how many the build alone cannot settle. VULNERABLE CVES: headline CVEs first',
    ...wrap(`(${names.join(', ')}), a name standing for all`, TABLE_WIDTH),
    'of its CVEs, then the newest. Every CVE id and the evidence: --format jsonl or csv.',
  );
  return out;
}

/**
 * jsonl and csv are streamed, one line per record as it comes. A table is for reading: its rows are
 * kept (only their short cells, not the records) and the sorted table is written by close(), so on a
 * terminal it comes after the progress bar is gone instead of interleaving with it.
 */
export function createRecordWriter(format: OutputFormat, out: Writable, style?: TableStyle): RecordWriter {
  let started = false;
  // Only a table needs the products' headline CVEs; built on the first row, once.
  let tableStyleOf: TableStyle | undefined = style;
  const styled = (): TableStyle => (tableStyleOf ??= defaultTableStyle());
  const rows: TableRow[] = [];
  // CSV rows end with CRLF (RFC 4180); jsonl and table lines with LF.
  const eol = format === 'csv' ? CSV_EOL : '\n';
  const put = async (line: string): Promise<void> => {
    if (!out.write(`${line}${eol}`)) await once(out, 'drain');
  };
  const lineOf = (r: ScanRecord): string => (format === 'jsonl' ? toJsonLine(r) : csvRow(toCsvCells(r)));
  return {
    async write(r) {
      if (format === 'table') {
        rows.push(tableRow(r, styled()));
        return;
      }
      if (!started) {
        started = true;
        if (format === 'csv') await put(csvRow(CSV_COLUMNS));
      }
      await put(lineOf(r));
    },
    async writeMany(records) {
      if (format === 'table') {
        for (const r of records) rows.push(tableRow(r, styled()));
        return;
      }
      if (records.length === 0) return;
      let text = '';
      if (!started) {
        started = true;
        if (format === 'csv') text = `${csvRow(CSV_COLUMNS)}${eol}`;
      }
      for (const r of records) text += `${lineOf(r)}${eol}`;
      if (!out.write(text)) await once(out, 'drain');
    },
    async close() {
      if (format === 'table') {
        if (started) return;
        started = true;
        for (const line of renderRows(rows, styled())) await put(line);
        rows.length = 0;
        return;
      }
      // The CSV header even when nothing answered, so an empty result still says what it is.
      if (!started && format === 'csv') {
        started = true;
        await put(csvRow(CSV_COLUMNS));
      }
    },
  };
}
