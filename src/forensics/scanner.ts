/**
 * The streaming line scanner: reads a log as byte chunks, finds candidate lines with one
 * case-insensitive prefilter regex over the chunk (latin1 view, so string offsets are byte offsets),
 * and parses only those lines into rows for the rules. Memory is bounded by the chunk size plus one
 * line (capped at MAX_LINE). Lines are counted exactly, so every record has a 1-based line number.
 *
 * Header lines (`#Fields:`) are honoured wherever they appear (IIS writes a new header block after
 * every restart). A candidate line that cannot be parsed (torn quote, wrong column count) is
 * reported as a notice with file:line and skipped; the rest of the file is still analysed.
 */
import { parseCsvLine } from './csv-line.js';
import { layoutOf, type Layout } from './kinds.js';
import { normUserAgent, type IocSet } from './iocs.js';
import type { Row } from './matcher.js';
import type { FieldName, LogRule } from './rules.js';
import type { RuleSet } from './ruleset.js';
import { findTimeInLine, parseIsoTime } from './time.js';
import type { FileKind, FindingRecord, Notice, Severity } from './types.js';

/** Longest line kept (1 MiB); a longer one is reported and skipped. */
export const MAX_LINE = 1024 * 1024;
/** Longest evidence excerpt (characters). */
export const MAX_EVIDENCE = 600;
/** Longest event record gathered from a multi-line export (bytes). */
const MAX_RECORD = 256 * 1024;

export interface Sink {
  finding(f: FindingRecord): void;
  notice(n: Notice): void;
}

export interface ScanInput {
  readonly file: string;
  readonly kind: FileKind;
  readonly layout: Layout | null;
  readonly rules: RuleSet;
  readonly sink: Sink;
  /** Called with the number of bytes consumed so far (progress). */
  readonly onBytes?: (n: number) => void;
}

export interface ScanStats {
  bytes: number;
  lines: number;
  candidates: number;
  first: string | null;
  last: string | null;
  malformed: number;
  /** Days (YYYY-MM-DD) with at least one dated record: coverage per day, not just first and last. */
  days: Set<string>;
  /** True when more than MAX_DAYS distinct days were seen (the rest were not recorded). */
  daysCapped: boolean;
}

/** Distinct days recorded per file at most (55 years): a hostile log cannot fill memory with dates. */
export const MAX_DAYS = 20_000;
const DAY_RE = /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$/;

function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/** A request row over parsed columns (CSV or space-separated). */
class ColumnRow implements Row {
  private url: string | undefined;
  constructor(
    private readonly cols: readonly string[],
    private readonly layout: Layout,
    private readonly line: string,
  ) {}
  get(field: FieldName): string | undefined {
    if (field === '$line') return this.line;
    if (field === '$url') {
      if (this.url === undefined) {
        const stem = this.get('UrlStem') ?? '';
        let q = this.get('UrlQuery') ?? '';
        if (q === '-') q = '';
        this.url = percentDecode(stem) + (q === '' ? '' : (q.startsWith('?') ? '' : '?') + percentDecode(q));
      }
      return this.url;
    }
    if (field === 'DateTime' && !this.layout.index.has('DateTime') && this.layout.dateIdx >= 0) {
      const d = this.cols[this.layout.dateIdx];
      const t = this.layout.timeIdx >= 0 ? this.cols[this.layout.timeIdx] : undefined;
      return d === undefined ? undefined : t === undefined ? d : `${d}T${t}Z`;
    }
    const i = this.layout.index.get(field);
    if (i === undefined) return undefined;
    const v = this.cols[i];
    if (v === undefined) return undefined;
    // IIS writes "-" for an empty field and "+" for spaces in the user agent.
    if (this.layout.separator === ' ') {
      if (v === '-') return '';
      if (field === 'UserAgent') return v.replace(/\+/g, ' ');
    }
    return v;
  }
}

const URL_IN_TEXT = /(?:^|[\s,"'])(\/(?:owa|ecp|aspnet_client|autodiscover|ews|mapi|powershell|microsoft-server-activesync|oab|rpc)(?:[/?][^\s,"']*)?)/i;
const STATUS_IN_TEXT = /(?:^|[\s,])([1-5]\d\d)(?=[\s,]|$)/;
const METHOD_IN_TEXT = /(?:^|[\s,"])(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|PROPFIND)(?=[\s,"]|$)/;
/** An AnchorMailbox value in a headerless HttpProxy row: `ServerInfo~...` as a field, quoted or not. */
const ANCHOR_IN_TEXT = /(?:^|,)(?:"(ServerInfo~(?:[^"]|"")*)"|(ServerInfo~[^,]*))/i;
const ROUTING_HINT_IN_TEXT = /(?:^|,)(X-BEResource-Cookie)(?=,|$)/i;
const IPV4_IN_TEXT = /(?:^|[^\d.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(?![\d.])/;

/**
 * A request row guessed from free text (analyst extracts, lines whose columns do not match their
 * header): the first Exchange URL, then a status code and method after it, and the first IPv4
 * address. Used only where no column layout is available.
 */
export class TextRow implements Row {
  private parsed = false;
  private stem: string | undefined;
  private query: string | undefined;
  private status: string | undefined;
  private method: string | undefined;
  private ip: string | undefined;
  private anchor: string | undefined;
  constructor(private readonly line: string) {}
  private parse(): void {
    if (this.parsed) return;
    this.parsed = true;
    const m = URL_IN_TEXT.exec(this.line);
    if (m !== null) {
      const url = m[1]!;
      const q = url.indexOf('?');
      this.stem = q === -1 ? url : url.slice(0, q);
      this.query = q === -1 ? '' : url.slice(q);
      const after = this.line.slice((m.index ?? 0) + m[0].length);
      this.status = STATUS_IN_TEXT.exec(after)?.[1];
      this.method = METHOD_IN_TEXT.exec(this.line)?.[1];
      // Only a request-like line has a client address; elsewhere an IPv4 is part of a path or message.
      this.ip = IPV4_IN_TEXT.exec(this.line)?.[1];
    }
    // HttpProxy rows copied without their #Fields line: the SSRF rules judge AnchorMailbox.
    const a = ANCHOR_IN_TEXT.exec(this.line);
    if (a !== null) this.anchor = a[1] !== undefined ? a[1].replace(/""/g, '"') : a[2];
  }
  get(field: FieldName): string | undefined {
    if (field === '$line') return this.line;
    this.parse();
    switch (field) {
      case 'UrlStem':
        return this.stem;
      case 'UrlQuery':
        return this.query;
      case '$url':
        return this.stem === undefined ? undefined : percentDecode(this.stem) + percentDecode(this.query ?? '');
      case 'HttpStatus':
        return this.status;
      case 'Method':
        return this.method;
      case 'ClientIpAddress':
        return this.ip;
      case 'AnchorMailbox':
        return this.anchor;
      case 'RoutingHint':
        return this.anchor === undefined ? undefined : ROUTING_HINT_IN_TEXT.exec(this.line)?.[1];
      default:
        return undefined;
    }
  }
}

/** A whole event record of an event-log export. */
class RecordRow implements Row {
  constructor(private readonly text: string) {}
  get(field: FieldName): string | undefined {
    return field === '$record' || field === '$line' ? this.text : undefined;
  }
}

/** Cuts evidence to MAX_EVIDENCE characters (escaping for the terminal happens in report.ts). */
export function clip(s: string, max = MAX_EVIDENCE): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function requestEvidence(row: Row, rule: LogRule | null): string {
  const parts: string[] = [];
  const method = row.get('Method');
  const url = row.get('UrlStem');
  if (url !== undefined && url !== '') {
    const q = row.get('UrlQuery');
    parts.push(`${method !== undefined && method !== '' ? `${method} ` : ''}${url}${q !== undefined && q !== '' && q !== '-' ? (q.startsWith('?') ? q : `?${q}`) : ''}`);
  }
  const status = row.get('HttpStatus');
  if (status !== undefined && status !== '') parts.push(`status=${status}`);
  const anchor = row.get('AnchorMailbox');
  if (anchor !== undefined && anchor !== '') parts.push(`AnchorMailbox=${anchor}`);
  const hint = row.get('RoutingHint');
  if (hint !== undefined && hint !== '' && (rule === null || rule.id.startsWith('proxylogon'))) parts.push(`RoutingHint=${hint}`);
  const ua = row.get('UserAgent');
  if (ua !== undefined && ua !== '') parts.push(`UA=${ua}`);
  if (parts.length === 0) return clip(row.get('$line') ?? '');
  return clip(parts.join(' '));
}

const SEV_IOC: Record<'ip' | 'ua' | 'name' | 'string', Severity> = { ip: 'medium', ua: 'info', name: 'high', string: 'medium' };

/**
 * Per-file state machine. Feed it chunks with `push`, then call `end`.
 */
export class LineScanner {
  readonly stats: ScanStats = { bytes: 0, lines: 0, candidates: 0, first: null, last: null, malformed: 0, days: new Set(), daysCapped: false };
  /** The day of the last dated line (fast path: consecutive lines of a log share their day). */
  private curDay = '';
  private carry: Buffer | null = null;
  private skippingLongLine = false;
  private layout: Layout | null;
  private lastDataLine = '';
  private firstPending = true;
  /**
   * Checks already reported for line `seenLine`. Lines (and event records) are judged in order and each
   * once, so only the current line's checks need remembering: a set of every (check, line) ever emitted
   * grew with the records, past the in-memory cap, and kept the garbage collector busy.
   */
  private seenLine = -1;
  private readonly seen = new Set<string>();
  // Event-export record state.
  private record: string[] = [];
  private recordLen = 0;
  private recordLine = 0;
  /** The record being gathered is an XML <Event> (else a CSV row, which may span lines inside quotes). */
  private recordXml = false;
  /** Double quotes seen in the CSV row so far: odd means a quoted field (a message) goes on. */
  private recordQuotes = 0;
  private readonly isEvent: boolean;
  private readonly isRequest: boolean;
  private readonly iocs: IocSet | null;

  constructor(private readonly input: ScanInput) {
    this.layout = input.layout;
    this.isEvent = input.kind === 'event-export';
    this.isRequest = input.kind === 'exchange-httpproxy' || input.kind === 'iis-w3c' || input.kind === 'csv-table' || input.kind === 'exchange-log';
    this.iocs = input.rules.iocs;
  }

  push(chunk: Buffer): void {
    this.stats.bytes += chunk.length;
    let buf = chunk;
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    let start = 0;
    if (this.skippingLongLine) {
      const nl = buf.indexOf(10);
      if (nl === -1) return;
      this.skippingLongLine = false;
      this.stats.lines++;
      start = nl + 1;
    }
    const end = buf.lastIndexOf(10);
    if (end < start) {
      const rest = buf.subarray(start);
      if (rest.length > MAX_LINE) {
        this.input.sink.notice({ level: 'warning', file: this.input.file, line: this.stats.lines + 1, message: `line longer than ${MAX_LINE} bytes skipped` });
        this.skippingLongLine = true;
      } else this.carry = Buffer.from(rest);
      return;
    }
    if (end + 1 < buf.length) {
      const rest = buf.subarray(end + 1);
      if (rest.length > MAX_LINE) {
        this.input.sink.notice({ level: 'warning', file: this.input.file, line: null, message: `line longer than ${MAX_LINE} bytes skipped` });
        this.skippingLongLine = true;
      } else this.carry = Buffer.from(rest);
    }
    this.process(buf.subarray(start, end + 1));
    this.input.onBytes?.(this.stats.bytes);
  }

  end(): ScanStats {
    if (this.carry !== null && this.carry.length > 0) {
      const tail = this.carry;
      this.carry = null;
      this.process(Buffer.concat([tail, Buffer.from('\n')]));
    }
    if (this.isEvent) this.flushRecord();
    if (this.lastDataLine !== '') this.stats.last = this.timeOfLine(this.lastDataLine);
    // Logs whose lines do not begin with their date (some exports) still count their first and last day.
    if (this.stats.first !== null) this.addDay(this.stats.first.slice(0, 10));
    if (this.stats.last !== null) this.addDay(this.stats.last.slice(0, 10));
    return this.stats;
  }

  /** `work` ends with "\n". */
  private process(work: Buffer): void {
    const s = work.toString('latin1');
    if (this.firstPending) this.findFirstTime(s, work);
    this.rememberLastLine(s, work);
    if (this.isEvent) {
      this.processEvents(s, work);
      return;
    }
    const re = this.input.rules.prefilter;
    re.lastIndex = 0;
    let pos = 0;
    let lineNo = this.stats.lines;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const hit = m.index;
      const ls = hit === 0 ? 0 : s.lastIndexOf('\n', hit - 1) + 1;
      for (let k = s.indexOf('\n', pos); k !== -1 && k < ls; k = s.indexOf('\n', pos)) {
        this.noteDay(s, pos);
        lineNo++;
        pos = k + 1;
      }
      this.noteDay(s, ls);
      const le = s.indexOf('\n', hit);
      this.stats.candidates++;
      let lineEnd = le;
      if (lineEnd > ls && s.charCodeAt(lineEnd - 1) === 13) lineEnd--;
      this.handleLine(work.toString('utf8', ls, lineEnd), lineNo + 1);
      lineNo++;
      pos = le + 1;
      re.lastIndex = le + 1;
    }
    for (let k = s.indexOf('\n', pos); k !== -1; k = s.indexOf('\n', pos)) {
      this.noteDay(s, pos);
      lineNo++;
      pos = k + 1;
    }
    this.stats.lines = lineNo;
  }

  /**
   * Records the day of the line starting at `p` when it begins with an ISO date (`2021-03-03T...`,
   * `2021-03-03 ...`, or quoted in a CSV export): HttpProxy, ECP, OAB generator and IIS lines all do.
   * Called for every line, so the common case (same day as the line before) is one startsWith.
   */
  private noteDay(s: string, p: number): void {
    const q = s.charCodeAt(p) === 34 ? p + 1 : p;
    if (this.curDay !== '' && s.startsWith(this.curDay, q)) return;
    const c = s.charCodeAt(q);
    if (c < 48 || c > 57 || s.charCodeAt(q + 4) !== 45 || s.charCodeAt(q + 7) !== 45) return;
    const n = s.charCodeAt(q + 10);
    // T, space, tab, comma, quote or the line's end: a date, not the start of a longer number.
    if (!(n === 84 || n === 32 || n === 9 || n === 44 || n === 34 || n === 13 || n === 10)) return;
    const d = s.slice(q, q + 10);
    if (!DAY_RE.test(d)) return;
    this.curDay = d;
    this.addDay(d);
  }

  private addDay(d: string): void {
    if (this.stats.days.has(d)) return;
    if (this.stats.days.size >= MAX_DAYS) {
      if (!this.stats.daysCapped) {
        this.stats.daysCapped = true;
        this.input.sink.notice({ level: 'warning', file: this.input.file, line: null, message: `more than ${MAX_DAYS} distinct days; coverage of the rest is not recorded` });
      }
      return;
    }
    // A real calendar day only: 2021-02-31 matches the pattern but is no day a log was written on.
    if (DAY_RE.test(d) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d)) this.stats.days.add(d);
  }

  private findFirstTime(s: string, work: Buffer): void {
    let p = 0;
    for (let i = 0; i < 50 && p < s.length; i++) {
      const e = s.indexOf('\n', p);
      const line = work.toString('utf8', p, e === -1 ? s.length : e);
      p = e === -1 ? s.length : e + 1;
      if (line.startsWith('#') || line.trim() === '') continue;
      const t = this.timeOfLine(line);
      if (t !== null) {
        this.stats.first = t;
        this.firstPending = false;
        return;
      }
    }
  }

  private rememberLastLine(s: string, work: Buffer): void {
    let e = s.length - 1; // the final "\n"
    for (let i = 0; i < 50 && e > 0; i++) {
      const b = s.lastIndexOf('\n', e - 1) + 1;
      const line = work.toString('utf8', b, e).replace(/\r$/, '');
      if (line.trim() !== '' && !line.startsWith('#') && this.timeOfLine(line) !== null) {
        this.lastDataLine = line;
        return;
      }
      e = b - 1;
    }
  }

  private timeOfLine(line: string): string | null {
    if (this.layout !== null && (this.layout.index.has('DateTime') || this.layout.dateIdx >= 0)) {
      const cols = this.layout.separator === ' ' ? line.split(' ') : parseCsvLine(line);
      if (cols !== null) {
        const v = new ColumnRow(cols, this.layout, line).get('DateTime');
        if (v !== undefined) {
          const t = parseIsoTime(v);
          if (t !== null) return t;
        }
      }
    }
    return findTimeInLine(line);
  }

  private handleHeader(line: string): void {
    const m = /^#Fields:\s*(.*)$/i.exec(line);
    if (m === null) return;
    const val = m[1]!.trim();
    const sep = this.input.kind === 'iis-w3c' || !val.includes(',') ? ' ' : ',';
    this.layout = layoutOf(val.split(sep).map((x) => x.trim()), sep);
  }

  private handleLine(line: string, lineNo: number): void {
    if (line.startsWith('#')) {
      this.handleHeader(line);
      return;
    }
    const rules = this.input.rules;
    let row: Row;
    let cols: string[] | null = null;
    const layout = this.layout;
    if (this.isRequest && layout !== null && (layout.index.has('UrlStem') || layout.index.has('AnchorMailbox'))) {
      cols = layout.separator === ' ' ? line.split(' ') : parseCsvLine(line);
      if (cols === null || cols.length !== layout.names.length) {
        // IIS may end a line with a trailing blank; Exchange rows must match their header exactly.
        const ok = cols !== null && layout.separator === ' ' && cols.length === layout.names.length + 1 && cols[cols.length - 1] === '';
        if (!ok) {
          this.stats.malformed++;
          this.input.sink.notice({
            level: 'warning',
            file: this.input.file,
            line: lineNo,
            message:
              cols === null
                ? 'malformed CSV line (unterminated quote) skipped'
                : `line has ${cols.length} fields, the header has ${layout.names.length}; ${this.input.kind === 'csv-table' ? 'read as free text' : 'skipped'}`,
          });
          if (this.input.kind !== 'csv-table') return;
          cols = null;
        }
      }
      row = cols === null ? new TextRow(line) : new ColumnRow(cols, layout, line);
    } else {
      row = new TextRow(line);
    }
    let time: string | null | undefined;
    const timeOf = (): string | null => {
      if (time === undefined) {
        const dt = row.get('DateTime');
        time = (dt !== undefined ? parseIsoTime(dt) : null) ?? findTimeInLine(line);
      }
      return time;
    };
    for (const cr of rules.request) if (cr.test(row)) this.emit(cr.rule.id, cr.rule.cves, cr.rule.severity, lineNo, timeOf(), row, requestEvidence(row, cr.rule));
    for (const cr of rules.line) if (cr.test(row)) this.emit(cr.rule.id, cr.rule.cves, cr.rule.severity, lineNo, timeOf(), row, clip(line));
    if (this.iocs !== null) this.checkIocs(row, line, lineNo, timeOf);
  }

  private checkIocs(row: Row, line: string, lineNo: number, timeOf: () => string | null): void {
    const iocs = this.iocs!;
    const ip = row.get('ClientIpAddress');
    if (iocs.ips.size > 0) {
      let hitIp: string | null = null;
      if (ip !== undefined && iocs.ips.has(ip.trim().toLowerCase())) hitIp = ip.trim();
      else if (!(row instanceof ColumnRow)) {
        for (const m of line.matchAll(/[0-9a-f:.]{7,45}/gi)) if (iocs.ips.has(m[0].toLowerCase())) hitIp = m[0];
      }
      if (hitIp !== null) this.emit('ioc-ip', [], SEV_IOC.ip, lineNo, timeOf(), row, `IoC IP ${hitIp}: ${requestEvidence(row, null)}`);
    }
    if (iocs.userAgents.length > 0) {
      const ua = row.get('UserAgent');
      const hay = normUserAgent(ua ?? line);
      const hit = iocs.userAgents.find((u) => (ua !== undefined ? hay === u : hay.includes(u)));
      if (hit !== undefined) this.emit('ioc-user-agent', [], SEV_IOC.ua, lineNo, timeOf(), row, `IoC user agent: ${requestEvidence(row, null)}`);
    }
    if (iocs.fileNames.size > 0) {
      const stem = row.get('UrlStem');
      if (stem !== undefined) {
        const base = stem.slice(stem.lastIndexOf('/') + 1).toLowerCase();
        if (iocs.fileNames.has(base)) {
          const st = row.get('HttpStatus') ?? '';
          this.emit('ioc-file-name', [], /^2\d\d$/.test(st) ? SEV_IOC.name : 'info', lineNo, timeOf(), row, `IoC file name ${base}: ${requestEvidence(row, null)}`);
        }
      }
    }
    for (const ls of iocs.logStrings) {
      const lower = line.toLowerCase();
      const hit = ls.strings.find((s) => ('literal' in s ? lower.includes(s.literal.toLowerCase()) : s.regex.test(line)));
      if (hit !== undefined) this.emit('ioc-log-string', [], SEV_IOC.string, lineNo, timeOf(), row, `IoC "${ls.name}": ${clip(line)}`);
    }
  }

  private emit(check: string, cves: readonly string[], severity: Severity, line: number, time: string | null, row: Row, evidence: string): void {
    if (line !== this.seenLine) {
      this.seen.clear();
      this.seenLine = line;
    }
    if (this.seen.has(check)) return;
    this.seen.add(check);
    const ip = row.get('ClientIpAddress');
    this.input.sink.finding({
      check,
      cve: cves.length === 0 ? null : cves.join(','),
      severity,
      file: this.input.file,
      line,
      time,
      clientIp: ip === undefined || ip === '' || ip === '-' ? null : ip.trim(),
      evidence,
    });
  }

  // --- Event-log exports: records can span lines, so every line is looked at (these files are small).

  private processEvents(s: string, work: Buffer): void {
    let p = 0;
    let lineNo = this.stats.lines;
    while (p < s.length) {
      const e = s.indexOf('\n', p);
      const end = e === -1 ? s.length : e;
      const line = work.toString('utf8', p, end > p && s.charCodeAt(end - 1) === 13 ? end - 1 : end);
      lineNo++;
      this.eventLine(line, lineNo);
      p = end + 1;
    }
    this.stats.lines = lineNo;
  }

  private static readonly XML_EVENT_START = /^\s*<Event[\s>]/;

  /**
   * Gathers event records: an XML record runs from <Event> to </Event>; a CSV record is one CSV row,
   * which continues over line breaks while a quoted field (the message) is open. Counting quotes
   * works in every language of Event Viewer and for PowerShell's Export-Csv, where the level names
   * ("Error", "Fehler", "Erreur") or the column order differ. A stray quote cannot swallow the rest
   * of the file: a record is cut at MAX_RECORD bytes.
   */
  private eventLine(line: string, lineNo: number): void {
    const xmlStart = LineScanner.XML_EVENT_START.test(line);
    const csvRowDone = !this.recordXml && this.recordQuotes % 2 === 0;
    if (this.record.length === 0 || xmlStart || csvRowDone || this.recordLen >= MAX_RECORD) {
      this.flushRecord();
      this.recordLine = lineNo;
      this.recordXml = xmlStart;
      this.recordQuotes = 0;
    }
    this.record.push(line.length > MAX_RECORD ? line.slice(0, MAX_RECORD) : line);
    this.recordLen += Math.min(line.length, MAX_RECORD) + 1;
    if (!this.recordXml) for (let i = line.indexOf('"'); i !== -1; i = line.indexOf('"', i + 1)) this.recordQuotes++;
    if (this.recordXml && /<\/Event>\s*$/.test(line)) this.flushRecord();
  }

  private flushRecord(): void {
    if (this.record.length === 0) return;
    const text = this.record.join('\n');
    this.record = [];
    this.recordLen = 0;
    this.recordXml = false;
    this.recordQuotes = 0;
    const row = new RecordRow(text);
    // XML exports carry TimeCreated SystemTime; CSV exports a (locale) date in the first line.
    const sys = /SystemTime=['"]([^'"]+)['"]/.exec(text)?.[1];
    const time = (sys === undefined ? null : parseIsoTime(sys)) ?? findTimeInLine(text);
    if (time !== null) this.addDay(time.slice(0, 10));
    const evidence = clip(text.replace(/\s+/g, ' '));
    for (const cr of [...this.input.rules.event, ...this.input.rules.line]) {
      if (!cr.test(row)) continue;
      this.stats.candidates++;
      this.emit(cr.rule.id, cr.rule.cves, cr.rule.severity, this.recordLine, time, row, evidence);
    }
  }
}
