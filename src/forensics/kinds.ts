/**
 * Recognises what a file is, from its first lines (`#Software`, `#Log-type`, `#Fields`, a CSV header
 * row, an event export) and from its path (Windows or POSIX separators), and maps its columns onto
 * the canonical field names of the rules. Columns are always found by name, never by position; the
 * one exception is an IIS log copied without its `#Fields` line, for which IIS's default field list
 * (what Exchange installs use) is assumed and a warning says so.
 */
import type { FieldName } from './rules.js';
import type { FileKind } from './types.js';

/** Normalises a path for matching: `/` separators, lower case. */
export function normPath(p: string): string {
  return p.replace(/\\/g, '/').toLowerCase();
}

/** IIS W3C default fields (the set Exchange servers log unless changed). */
export const IIS_DEFAULT_FIELDS: readonly string[] = [
  'date', 'time', 's-ip', 'cs-method', 'cs-uri-stem', 'cs-uri-query', 's-port', 'cs-username', 'c-ip',
  'cs(User-Agent)', 'cs(Referer)', 'sc-status', 'sc-substatus', 'sc-win32-status', 'time-taken',
];

const ALIASES: Readonly<Record<string, FieldName>> = {
  datetime: 'DateTime', 'date-time': 'DateTime', timestamp: 'DateTime', timecreated: 'DateTime',
  clientipaddress: 'ClientIpAddress', 'c-ip': 'ClientIpAddress', clientip: 'ClientIpAddress',
  'client-ip': 'ClientIpAddress', client_ip: 'ClientIpAddress', ip: 'ClientIpAddress', sourceip: 'ClientIpAddress',
  urlhost: 'UrlHost', 'cs-host': 'UrlHost', host: 'UrlHost', hostname: 'UrlHost',
  urlstem: 'UrlStem', 'cs-uri-stem': 'UrlStem', urlpath: 'UrlStem', url: 'UrlStem', uri: 'UrlStem', path: 'UrlStem',
  urlquery: 'UrlQuery', 'cs-uri-query': 'UrlQuery', query: 'UrlQuery',
  method: 'Method', 'cs-method': 'Method', httpmethod: 'Method', 'http-method': 'Method', 'http-metode': 'Method', verb: 'Method',
  httpstatus: 'HttpStatus', 'sc-status': 'HttpStatus', status: 'HttpStatus', statuscode: 'HttpStatus',
  'status-code': 'HttpStatus', httpstatuskode: 'HttpStatus',
  useragent: 'UserAgent', 'cs(user-agent)': 'UserAgent', 'user-agent': 'UserAgent', user_agent: 'UserAgent',
  anchormailbox: 'AnchorMailbox',
  routinghint: 'RoutingHint',
  authenticateduser: 'AuthenticatedUser', 'cs-username': 'AuthenticatedUser',
  protocol: 'Protocol',
};

/** Column layout of a file: canonical field → column index, plus IIS's split date/time. */
export interface Layout {
  readonly names: readonly string[];
  readonly index: ReadonlyMap<FieldName, number>;
  /** IIS logs keep date and time in two columns. */
  readonly dateIdx: number;
  readonly timeIdx: number;
  readonly separator: ',' | ' ';
}

export function layoutOf(names: readonly string[], separator: ',' | ' '): Layout {
  const index = new Map<FieldName, number>();
  let dateIdx = -1;
  let timeIdx = -1;
  names.forEach((raw, i) => {
    const n = raw.trim().toLowerCase();
    if (n === 'date') dateIdx = i;
    else if (n === 'time') timeIdx = i;
    const canon = ALIASES[n];
    // The first column wins: Exchange logs name each column once; exports sometimes repeat "Host".
    if (canon !== undefined && !index.has(canon)) index.set(canon, i);
  });
  return { names, index, dateIdx, timeIdx, separator };
}

export interface Detected {
  readonly kind: FileKind;
  readonly layout: Layout | null;
  /** Set when the layout is assumed, not read (IIS without #Fields). */
  readonly assumed: boolean;
}

const SCRIPT_EXT = /\.(aspx|ashx|asmx|asp|cshtml|soap|rem|php|jsp|config|dll|exe)$/i;
const LOG_EXT = /\.(log|csv|txt|xml|evtx|tsv|out)$/i;

function kindFromPath(p: string): FileKind | null {
  const n = normPath(p);
  if (/(^|\/)logging\/httpproxy\//.test(n)) return 'exchange-httpproxy';
  if (/(^|\/)logging\/ecp\/server\//.test(n)) return 'exchange-ecp-server';
  if (/(^|\/)logging\/oabgeneratorlog\//.test(n)) return 'exchange-oab-generator';
  if (/(^|\/)w3svc\d+\//.test(n) || /w3svc\d+[^/]*$/.test(n) || /(^|\/)u_ex\d+\.log$/.test(n)) return 'iis-w3c';
  if (/\.evtx$/.test(n)) return 'evtx';
  if (/(^|\/)logging\//.test(n)) return 'exchange-log';
  return null;
}

/**
 * Decides the kind of a file from its path and its first bytes (`head`, up to 64 KiB, decoded).
 * `null` head means the content is not available (then the path decides).
 */
export function detectKind(path: string, rawHead: string): Detected {
  if (SCRIPT_EXT.test(path)) return { kind: 'file', layout: null, assumed: false };
  // A UTF-8 byte-order mark (Event Viewer and PowerShell exports, editors on Windows) would hide the
  // first header line ("#Software", "Level,Date and Time,...") from every test below.
  const head = rawHead.startsWith('\uFEFF') ? rawHead.slice(1) : rawHead;
  if (head.startsWith('ElfFile\0')) return { kind: 'evtx', layout: null, assumed: false };
  const lines = head.split(/\r?\n/, 40);
  let fields: string[] | null = null;
  let logType = '';
  let software = '';
  for (const l of lines) {
    if (!l.startsWith('#')) continue;
    const m = /^#([A-Za-z-]+):\s*(.*)$/.exec(l);
    if (m === null) continue;
    const key = m[1]!.toLowerCase();
    const val = m[2]!;
    if (key === 'fields') fields = val.trim().split(val.includes(',') ? ',' : ' ').map((s) => s.trim());
    else if (key === 'log-type') logType = val.toLowerCase();
    else if (key === 'software') software = val.toLowerCase();
  }
  const byPath = kindFromPath(path);
  if (software.includes('internet information services') || (fields !== null && fields.includes('cs-uri-stem'))) {
    return { kind: 'iis-w3c', layout: fields === null ? null : layoutOf(fields, ' '), assumed: false };
  }
  if (logType.includes('httpproxy') || (fields !== null && fields.includes('AnchorMailbox'))) {
    return { kind: 'exchange-httpproxy', layout: fields === null ? null : layoutOf(fields, ','), assumed: false };
  }
  if (logType.includes('ecp server')) {
    return { kind: 'exchange-ecp-server', layout: fields === null ? null : layoutOf(fields, ','), assumed: false };
  }
  if (logType.includes('oab')) {
    return { kind: 'exchange-oab-generator', layout: fields === null ? null : layoutOf(fields, ','), assumed: false };
  }
  if (software.includes('exchange') || logType !== '') {
    return { kind: byPath ?? 'exchange-log', layout: fields === null ? null : layoutOf(fields, ','), assumed: false };
  }
  // Event-log exports: XML (wevtutil /f:xml, Event Viewer "Save as XML") or Event Viewer CSV.
  const firstData = lines.find((l) => l.trim() !== '' && !l.startsWith('#TYPE')) ?? '';
  if (/<Event[\s>]|<Events[\s>]/.test(head.slice(0, 4096))) return { kind: 'event-export', layout: null, assumed: false };
  if (/^"?Level"?,"?Date and Time"?,"?Source"?/i.test(firstData) || /^"?(TimeCreated|MachineName|ProviderName)"?,/i.test(firstData)) {
    return { kind: 'event-export', layout: null, assumed: false };
  }
  if (isEventCsv(lines, firstData)) return { kind: 'event-export', layout: null, assumed: false };
  if (byPath === 'evtx') return { kind: 'evtx', layout: null, assumed: false };
  // A CSV table with a header row naming request columns (PowerShell Export-Csv, analyst extracts).
  const header = firstData.replace(/^\uFEFF/, '');
  if (header.includes(',')) {
    const names = header.split(',').map((s) => s.trim().replace(/^"|"$/g, ''));
    const layout = layoutOf(names, ',');
    if (layout.index.has('UrlStem') || layout.index.has('AnchorMailbox')) {
      return { kind: 'csv-table', layout, assumed: false };
    }
  }
  if (byPath === 'iis-w3c') {
    return { kind: 'iis-w3c', layout: fields === null ? layoutOf(IIS_DEFAULT_FIELDS, ' ') : layoutOf(fields, ' '), assumed: fields === null };
  }
  if (byPath !== null) return { kind: byPath, layout: null, assumed: false };
  if (LOG_EXT.test(path)) return { kind: 'text', layout: null, assumed: false };
  return { kind: 'file', layout: null, assumed: false };
}

/**
 * Event-log CSV exports whose header is not the English Event Viewer one: PowerShell's
 * `Get-WinEvent | Export-Csv` / `Get-EventLog | Export-Csv` (columns in object order, "Message" first
 * or in the middle), and Event Viewer in another language ("Ebene,Datum und Uhrzeit,Quelle,...",
 * "Niveau,Date et heure,Source,..."), recognised by its first row: a level word, then a date and time.
 */
function isEventCsv(lines: readonly string[], header: string): boolean {
  const cols = header.replace(/^\uFEFF/, '').split(',').map((c) => c.trim().replace(/^"|"$/g, '').toLowerCase());
  if (cols.includes('message') && (cols.includes('providername') || cols.includes('source')) &&
      (cols.includes('timecreated') || cols.includes('timegenerated'))) {
    return true;
  }
  if (cols.length !== 5) return false;
  const i = lines.findIndex((l) => l.replace(/^\uFEFF/, '') === header.replace(/^\uFEFF/, ''));
  const row = i === -1 ? undefined : lines[i + 1];
  return row !== undefined && /^"?[^",\d]{1,40}"?,"?\d{1,4}[./-]\d{1,2}[./-]\d{1,4}[ T]\d{1,2}:\d{2}/.test(row);
}

/** Kinds whose lines are request rows with a column layout. */
export function isRequestKind(k: FileKind): boolean {
  return k === 'exchange-httpproxy' || k === 'iis-w3c' || k === 'csv-table' || k === 'exchange-log';
}

/** Kinds read line by line (everything except plain files and binary EVTX). */
export function isLogKind(k: FileKind): boolean {
  return k !== 'file' && k !== 'evtx';
}
