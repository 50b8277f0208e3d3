/**
 * Orchestrates one run: expands the inputs, recognises each file's kind, streams logs through the
 * line scanner and files through the file checks, and folds coverage into the verdict.
 * No database, no network: only the given paths are read.
 */
import { createHash } from 'node:crypto';
import { CAMPAIGNS } from './rules.js';
import { buildRuleSet, type RuleSet } from './ruleset.js';
import { detectKind, isLogKind, normPath } from './kinds.js';
import { LineScanner, type Sink } from './scanner.js';
import { expandInputs, type Source } from './sources.js';
import { checkFile, CONTENT_CAP, fileNeeds } from './file-checks.js';
import type { IocSet } from './iocs.js';
import type {
  AnalysisResult,
  CampaignCoverage,
  DayRange,
  FileKind,
  FindingRecord,
  FolderCoverage,
  Notice,
  Verdict,
} from './types.js';

export interface Progress {
  readonly files: number;
  readonly bytes: number;
  readonly current: string;
}

export interface AnalyzeOptions {
  readonly paths: readonly string[];
  /** Findings with a known time before this are left out. */
  readonly since?: Date | null;
  readonly iocs?: IocSet | null;
  readonly onProgress?: (p: Progress) => void;
}

/** Records kept in memory at most (each is small; the verdict still counts the rest). */
export const MAX_FINDINGS = 500_000;
/** Largest file hashed for hash IoCs (64 MiB). */
export const MAX_HASH_BYTES = 64 * 1024 * 1024;
/** How much of a file is read to recognise its kind. */
const HEAD_BYTES = 64 * 1024;
/** Extensions that are read as logs; anything else is a plain file (checked by path, content, hash). */
const LOG_EXT = /\.(log|csv|txt|xml|tsv|out|evtx)$/i;

/**
 * Logs whose days decide whether a campaign window is covered: HttpProxy and IIS request logs, where
 * every campaign's requests are seen. CSV extracts are left out: an extract holds chosen rows only.
 */
const REQUEST_LOG_KINDS: readonly FileKind[] = ['exchange-httpproxy', 'iis-w3c'];

/** Kinds that are Exchange or IIS logs or exports of them: without one, no verdict can rest on logs. */
const EXCHANGE_LOG_KINDS: readonly FileKind[] = [
  'exchange-httpproxy',
  'exchange-ecp-server',
  'exchange-oab-generator',
  'exchange-log',
  'iis-w3c',
  'csv-table',
  'event-export',
];

/** UTF-16LE exports (PowerShell Out-File, Event Viewer) are re-encoded as UTF-8 chunk by chunk. */
async function* utf16ToUtf8(first: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  const dec = new TextDecoder('utf-16le');
  for (const b of first) yield Buffer.from(dec.decode(b, { stream: true }), 'utf8');
  for (let r = await rest.next(); r.done !== true; r = await rest.next()) yield Buffer.from(dec.decode(r.value, { stream: true }), 'utf8');
  const tail = dec.decode();
  if (tail !== '') yield Buffer.from(tail, 'utf8');
}

/** More than 1% NUL bytes in the first 4 KiB (and no UTF-16 byte-order mark): not a text log. */
export function looksBinary(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return false;
  const n = Math.min(head.length, 4096);
  let nul = 0;
  for (let i = 0; i < n; i++) if (head[i] === 0) nul++;
  return n > 0 && nul * 100 > n;
}

function dirOf(display: string): string {
  const i = Math.max(display.lastIndexOf('/'), display.lastIndexOf('\\'));
  return i === -1 ? '.' : display.slice(0, i);
}

export async function analyze(opts: AnalyzeOptions): Promise<AnalysisResult> {
  const findings: FindingRecord[] = [];
  const notices: Notice[] = [];
  let hadErrors = false;
  const notice = (n: Notice): void => {
    if (n.level === 'error') hadErrors = true;
    // Bounded: a file full of torn lines must not fill memory with notices.
    if (notices.length < 10_000) notices.push(n);
    else if (notices.length === 10_000) notices.push({ level: 'warning', file: '(all)', line: null, message: 'more than 10000 notices; the rest are not listed' });
  };
  // Bounded too: a log full of attack lines must not exhaust memory; the rest are counted.
  let dropped = 0;
  const sinceMs = opts.since === undefined || opts.since === null ? null : opts.since.getTime();
  // --since narrows what is listed, never the verdict: an indicator dated before it still means the server
  // was compromised, so it is counted, named in a warning, and keeps the exit code at 1.
  let beforeSince = 0;
  let attemptsBeforeSince = 0;
  let indicators = 0;
  let attempts = 0;
  const keep = (f: FindingRecord): void => {
    if (f.severity === 'info') attempts++;
    else indicators++;
    if (sinceMs !== null && f.time !== null && Date.parse(f.time) < sinceMs) {
      if (f.severity !== 'info') beforeSince++;
      else attemptsBeforeSince++;
      return;
    }
    if (findings.length < MAX_FINDINGS) findings.push(f);
    else dropped++;
  };
  const sink: Sink = { finding: keep, notice };
  const iocs = opts.iocs ?? null;
  const ruleSets = new Map<FileKind, RuleSet>();
  const ruleSetFor = (k: FileKind): RuleSet => {
    let rs = ruleSets.get(k);
    if (rs === undefined) {
      rs = buildRuleSet(k, iocs);
      ruleSets.set(k, rs);
    }
    return rs;
  };
  const coverage = new Map<string, { folder: string; kind: FileKind; files: number; first: string | null; last: string | null; days: Set<string> }>();
  let files = 0;
  let logFiles = 0;
  let exchangeLogs = 0;
  let bytes = 0;
  let lines = 0;
  let candidates = 0;

  for await (const src of expandInputs(opts.paths, notice)) {
    files++;
    opts.onProgress?.({ files, bytes, current: src.display });
    try {
      const r = await analyzeSource(src);
      bytes += r.bytes;
      lines += r.lines;
      candidates += r.candidates;
    } catch (e: unknown) {
      notice({ level: 'error', file: src.display, line: null, message: `read failed: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  async function analyzeSource(src: Source): Promise<{ bytes: number; lines: number; candidates: number }> {
    const p = normPath(src.kindPath);
    const maybeLog = LOG_EXT.test(p) || /(^|\/)(logging|w3svc\d+)\//.test(p) || !/\.[a-z0-9]{1,6}$/.test(p.slice(p.lastIndexOf('/') + 1));
    if (!maybeLog || /\.(aspx|ashx|asmx|asp|cshtml|config)$/.test(p)) return analyzeFile(src);
    const it = src.open()[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headLen = 0;
    let done = false;
    while (headLen < HEAD_BYTES) {
      const r = await it.next();
      if (r.done === true) {
        done = true;
        break;
      }
      head.push(r.value);
      headLen += r.value.length;
    }
    let headBuf: Buffer = Buffer.concat(head);
    let stream: AsyncIterator<Buffer> = done ? (async function* () {})()[Symbol.asyncIterator]() : it;
    if (headBuf.length >= 2 && headBuf[0] === 0xff && headBuf[1] === 0xfe) {
      const conv = utf16ToUtf8([headBuf.subarray(2)], stream);
      const first = await conv.next();
      headBuf = first.done === true ? Buffer.alloc(0) : first.value;
      stream = conv;
    }
    const det = detectKind(src.kindPath, headBuf.toString('utf8', 0, Math.min(headBuf.length, HEAD_BYTES)));
    if (det.kind === 'evtx') {
      await it.return?.();
      notice({
        level: 'warning',
        file: src.display,
        line: null,
        message:
          'EVTX is not parsed; export the Application log as XML and pass that file: ' +
          'wevtutil qe Application /q:"*[System[Provider[@Name=\'MSExchange Unified Messaging\']]]" /f:xml > um.xml',
      });
      return { bytes: 0, lines: 0, candidates: 0 };
    }
    // ESE transaction logs (Mailbox\<db>\E00*.log) and other binary files with a log-like name.
    if (!isLogKind(det.kind) || looksBinary(headBuf)) {
      await it.return?.();
      return analyzeFile(src);
    }
    if (det.assumed) {
      notice({ level: 'warning', file: src.display, line: null, message: 'no #Fields header; IIS default fields assumed' });
    }
    if (det.kind === 'exchange-httpproxy' && det.layout === null) {
      // Exchange writes the header at the top of every file; an excerpt may have lost it.
      notice({ level: 'warning', file: src.display, line: null, message: 'no #Fields header; AnchorMailbox, URL, status and client address guessed from the text' });
    }
    logFiles++;
    if (EXCHANGE_LOG_KINDS.includes(det.kind)) exchangeLogs++;
    const scanner = new LineScanner({ file: src.display, kind: det.kind, layout: det.layout, rules: ruleSetFor(det.kind), sink });
    if (headBuf.length > 0) scanner.push(headBuf);
    let lastReport = Date.now();
    for (let r = await stream.next(); r.done !== true; r = await stream.next()) {
      scanner.push(r.value);
      if (opts.onProgress !== undefined && Date.now() - lastReport > 250) {
        lastReport = Date.now();
        opts.onProgress({ files, bytes: bytes + scanner.stats.bytes, current: src.display });
      }
    }
    const st = scanner.end();
    if (st.first !== null || st.last !== null || st.days.size > 0) {
      const folder = dirOf(src.display);
      const key = `${folder}\u0000${det.kind}`;
      const c = coverage.get(key) ?? { folder, kind: det.kind, files: 0, first: null, last: null, days: new Set<string>() };
      c.files++;
      for (const d of st.days) if (c.days.size < MAX_COVERAGE_DAYS) c.days.add(d);
      if (st.first !== null && (c.first === null || st.first < c.first)) c.first = st.first;
      if (st.last !== null && (c.last === null || st.last > c.last)) c.last = st.last;
      if (st.first !== null && (c.last === null || st.first > c.last)) c.last = st.first;
      coverage.set(key, c);
    }
    return { bytes: st.bytes, lines: st.lines, candidates: st.candidates };
  }

  async function analyzeFile(src: Source): Promise<{ bytes: number; lines: number; candidates: number }> {
    const need = fileNeeds(src.display, iocs);
    let content: string | null = null;
    let hashes: Record<string, string> | null = null;
    let size = src.size;
    // Web shells and attacker tools are small; mailbox databases (.edb) are not hashed.
    const hashIt = need.hash && src.size <= MAX_HASH_BYTES;
    if (need.content || hashIt) {
      const parts: Buffer[] = [];
      let got = 0;
      const hs = hashIt ? { md5: createHash('md5'), sha1: createHash('sha1'), sha256: createHash('sha256') } : null;
      let total = 0;
      for await (const c of src.open()) {
        total += c.length;
        if (hs !== null) for (const h of Object.values(hs)) h.update(c);
        if (need.content && got < CONTENT_CAP) {
          parts.push(c.subarray(0, CONTENT_CAP - got));
          got += Math.min(c.length, CONTENT_CAP - got);
        } else if (hs === null) break;
      }
      size = total;
      if (need.content) content = Buffer.concat(parts).toString('latin1');
      if (hs !== null) hashes = { md5: hs.md5.digest('hex'), sha1: hs.sha1.digest('hex'), sha256: hs.sha256.digest('hex') };
    }
    for (const f of checkFile({ display: src.display, mtime: src.mtime, size, content, hashes }, iocs)) {
      keep(f);
    }
    return { bytes: content === null && hashes === null ? 0 : size, lines: 0, candidates: 0 };
  }

  if (beforeSince > 0 && opts.since) {
    notices.push({
      level: 'warning',
      file: '(all)',
      line: null,
      message: `${beforeSince} indicator(s) dated before --since ${opts.since.toISOString()} are not listed but still count: the verdict stays "indicators found" (run without --since to see them)`,
    });
  }
  if (dropped > 0) {
    notices.push({ level: 'warning', file: '(all)', line: null, message: `more than ${MAX_FINDINGS} records; ${dropped} more were found but not kept (narrow the input or use --since)` });
  }
  const folderCoverage: FolderCoverage[] = [...coverage.values()]
    .sort((a, b) => a.folder.localeCompare(b.folder) || a.kind.localeCompare(b.kind))
    .map((c) => {
      const days = [...c.days].sort();
      return { folder: c.folder, kind: c.kind, family: familyOf(c.folder, c.kind), files: c.files, first: c.first, last: c.last, days, gaps: gapsOf(days) };
    });
  const campaigns = campaignCoverage(folderCoverage);
  if (exchangeLogs === 0) {
    notices.push({
      level: 'error',
      file: '(all)',
      line: null,
      message:
        `no Exchange or IIS log found in the input (${files} file(s) read; ${logFiles} text file(s), none an Exchange or IIS log or an export of one): ` +
        'give the Exchange install folder, copies of its Logging folders (HttpProxy, ECP\\Server, OABGeneratorLog), IIS W3SVC* logs, ' +
        'or XML/CSV exports of the Application event log',
    });
  }
  findings.sort(compareFindings);
  return {
    verdict: verdictOf(indicators, campaigns, exchangeLogs),
    findings,
    counts: { indicators, attempts, indicatorsBeforeSince: beforeSince, attemptsBeforeSince, notKept: dropped },
    notices,
    coverage: folderCoverage,
    campaigns,
    stats: { files, logFiles, exchangeLogs, bytes, lines, candidateLines: candidates },
    hadErrors,
    since: opts.since === undefined || opts.since === null ? null : opts.since.toISOString(),
  };
}

/** Distinct days kept per folder and kind at most (see MAX_DAYS in scanner.ts). */
const MAX_COVERAGE_DAYS = 20_000;
const DAY_MS = 86_400_000;

function dayMs(d: string): number {
  return Date.parse(`${d}T00:00:00Z`);
}

function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Gaps between consecutive days of a sorted list: the days without records between first and last. */
export function gapsOf(sortedDays: readonly string[]): DayRange[] {
  const out: DayRange[] = [];
  for (let i = 1; i < sortedDays.length; i++) {
    const prev = dayMs(sortedDays[i - 1]!);
    const cur = dayMs(sortedDays[i]!);
    if (cur - prev > DAY_MS) out.push({ from: dayOf(prev + DAY_MS), to: dayOf(cur - DAY_MS) });
  }
  return out;
}

/** Every day from `from` to `to` inclusive. */
function daysOf(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = dayMs(from), end = dayMs(to); t <= end; t += DAY_MS) out.push(dayOf(t));
  return out;
}

/** Groups a sorted list of days into runs of consecutive days. */
export function rangesOf(sortedDays: readonly string[]): DayRange[] {
  const out: DayRange[] = [];
  for (const d of sortedDays) {
    const last = out[out.length - 1];
    if (last !== undefined && dayMs(d) - dayMs(last.to) === DAY_MS) out[out.length - 1] = { from: last.from, to: d };
    else out.push({ from: d, to: d });
  }
  return out;
}

/** `2021-03-05, 2021-03-10..2021-03-12, ... and 4 more` (at most `max` ranges). */
export function formatRanges(rs: readonly DayRange[], max = 6): string {
  const shown = rs.slice(0, max).map((r) => (r.from === r.to ? r.from : `${r.from}..${r.to}`));
  return shown.join(', ') + (rs.length > max ? ` and ${rs.length - max} more range(s)` : '');
}

/** The log family of a folder: "HttpProxy/Ecp", "IIS W3SVC1", "ECP server", ... */
export function familyOf(folder: string, kind: FileKind): string {
  const hp = /(?:^|[\\/])HttpProxy[\\/]([^\\/!]+)$/i.exec(folder);
  if (hp !== null && kind === 'exchange-httpproxy') return `HttpProxy/${hp[1]}`;
  const w3 = /(?:^|[\\/])(W3SVC\d+)(?:[\\/]|$)/i.exec(folder);
  if (w3 !== null && kind === 'iis-w3c') return `IIS ${w3[1]!.toUpperCase()}`;
  switch (kind) {
    case 'exchange-httpproxy':
      return 'HttpProxy';
    case 'iis-w3c':
      return 'IIS';
    case 'exchange-ecp-server':
      return 'ECP server';
    case 'exchange-oab-generator':
      return 'OAB generator';
    case 'exchange-log': {
      const m = /([^\\/!]+)$/.exec(folder);
      return `Exchange log (${m === null ? folder : m[1]})`;
    }
    case 'csv-table':
      return 'CSV export';
    case 'event-export':
      return 'event-log export';
    default:
      return 'text';
  }
}

function compareFindings(a: FindingRecord, b: FindingRecord): number {
  // Equal strings skip localeCompare: records of one file are the common neighbours, up to MAX_FINDINGS of them.
  return (a.file === b.file ? 0 : a.file.localeCompare(b.file)) || (a.line ?? 0) - (b.line ?? 0) || (a.check === b.check ? 0 : a.check.localeCompare(b.check));
}

/**
 * The coverage of each campaign's window by the request logs (HttpProxy and IIS together: every campaign's
 * requests show in both). Rule: a campaign is `covered` only when those logs have at least one dated
 * record on every day of its window; otherwise `insufficient`, with the missing days listed, overall and
 * per log family. First and last timestamps alone say nothing: one line from 2020 and one file from 2023
 * cover nothing in between.
 */
export function campaignCoverage(cov: readonly FolderCoverage[]): CampaignCoverage[] {
  const req = cov.filter((c) => REQUEST_LOG_KINDS.includes(c.kind));
  const all = new Set<string>();
  for (const c of req) for (const d of c.days) all.add(d);
  const earliest = req.reduce<string | null>((m, c) => (c.first !== null && (m === null || c.first < m) ? c.first : m), null);
  const sortedAll = [...all].sort();
  return CAMPAIGNS.map((k) => {
    const window = { from: k.window.from, to: k.window.to };
    const windowList = daysOf(window.from, window.to);
    const missingList = windowList.filter((d) => !all.has(d));
    const missing = rangesOf(missingList);
    // Every log family with records in the window, request logs or not, so the analyst sees which
    // days each one lacks (only the request logs decide the status).
    const families = cov
      .filter((c) => c.days.some((d) => d >= window.from && d <= window.to))
      .map((c) => {
        const has = new Set(c.days);
        const m = windowList.filter((d) => !has.has(d));
        return { folder: c.folder, family: c.family, decides: REQUEST_LOG_KINDS.includes(c.kind), missing: rangesOf(m), missingDays: m.length };
      });
    const base = {
      campaign: k.id,
      cves: k.cves,
      window,
      needLogsFrom: window.from,
      earliestLog: earliest,
      missing,
      missingDays: missingList.length,
      windowDays: windowList.length,
      families,
    };
    if (sortedAll.length === 0) {
      return { ...base, status: 'insufficient', reason: 'no HttpProxy or IIS log with dated records in the input' };
    }
    if (missingList.length === windowList.length) {
      const span = `${sortedAll[0]}..${sortedAll[sortedAll.length - 1]}`;
      return {
        ...base,
        status: 'insufficient',
        reason: `no request-log record on any of the ${windowList.length} day(s) of the window (the logs have records on ${sortedAll.length} day(s) within ${span})`,
      };
    }
    if (missingList.length > 0) {
      return {
        ...base,
        status: 'insufficient',
        reason: `request logs lack ${missingList.length} of ${windowList.length} day(s) of the window: ${formatRanges(missing)}`,
      };
    }
    return { ...base, status: 'covered', reason: `request logs have records on all ${windowList.length} day(s) of the window` };
  });
}

/**
 * The verdict: indicators decide first (a compromise seen is a compromise, whatever else is missing);
 * then no Exchange or IIS log at all; then any campaign window not covered.
 */
export function verdictOf(indicators: number, campaigns: readonly CampaignCoverage[], exchangeLogs: number): Verdict {
  if (indicators > 0) return 'indicators-found';
  if (exchangeLogs === 0) return 'no-logs';
  if (campaigns.some((c) => c.status === 'insufficient')) return 'insufficient-logs';
  return 'none-found';
}
