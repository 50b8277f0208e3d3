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

const REQUEST_LOG_KINDS: readonly FileKind[] = ['exchange-httpproxy', 'iis-w3c'];

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
  const keep = (f: FindingRecord): void => {
    if (sinceMs !== null && f.time !== null && Date.parse(f.time) < sinceMs) {
      if (f.severity !== 'info') beforeSince++;
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
  const coverage = new Map<string, { folder: string; kind: FileKind; files: number; first: string | null; last: string | null }>();
  let files = 0;
  let logFiles = 0;
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
    if (st.first !== null || st.last !== null) {
      const folder = dirOf(src.display);
      const key = `${folder}\u0000${det.kind}`;
      const c = coverage.get(key) ?? { folder, kind: det.kind, files: 0, first: null, last: null };
      c.files++;
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
  const folderCoverage: FolderCoverage[] = [...coverage.values()].sort((a, b) => a.folder.localeCompare(b.folder));
  const campaigns = campaignCoverage(folderCoverage);
  findings.sort(compareFindings);
  return {
    verdict: beforeSince > 0 ? 'indicators-found' : verdictOf(findings, campaigns),
    findings,
    notices,
    coverage: folderCoverage,
    campaigns,
    stats: { files, logFiles, bytes, lines, candidateLines: candidates },
    hadErrors,
  };
}

function compareFindings(a: FindingRecord, b: FindingRecord): number {
  return a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || a.check.localeCompare(b.check);
}

/** The period at risk of each campaign against the request logs' first and last timestamps. */
export function campaignCoverage(cov: readonly FolderCoverage[]): CampaignCoverage[] {
  const req = cov.filter((c) => REQUEST_LOG_KINDS.includes(c.kind));
  const earliest = req.reduce<string | null>((m, c) => (c.first !== null && (m === null || c.first < m) ? c.first : m), null);
  const latest = req.reduce<string | null>((m, c) => (c.last !== null && (m === null || c.last > m) ? c.last : m), null);
  return CAMPAIGNS.map((k) => {
    const base = { campaign: k.id, cves: k.cves, needLogsFrom: k.needLogsFrom, earliestLog: earliest };
    if (earliest === null) return { ...base, status: 'insufficient', reason: 'no HttpProxy or IIS logs with timestamps in the input' };
    if (latest !== null && latest < `${k.exploitedSince}T00:00:00.000Z`) {
      return { ...base, status: 'insufficient', reason: `logs end ${latest.slice(0, 10)}, before exploitation began (${k.exploitedSince})` };
    }
    // "After 2021-03-03" means from the next day on: a log that starts during the day counts.
    if (earliest.slice(0, 10) > k.needLogsFrom) {
      return { ...base, status: 'insufficient', reason: `logs begin ${earliest.slice(0, 10)}, after ${k.needLogsFrom} (${k.note})` };
    }
    return { ...base, status: 'covered', reason: `logs begin ${earliest.slice(0, 10)}` };
  });
}

export function verdictOf(findings: readonly FindingRecord[], campaigns: readonly CampaignCoverage[]): Verdict {
  if (findings.some((f) => f.severity !== 'info')) return 'indicators-found';
  if (campaigns.some((c) => c.status === 'insufficient')) return 'insufficient-logs';
  return 'none-found';
}
