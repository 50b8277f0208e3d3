/**
 * Output formats: the human summary (`text`), one JSON object per record (`jsonl`), and `csv`.
 * Evidence is attacker-controlled: in text output every control, bidi and zero-width character is
 * shown escaped, so a log line cannot move the cursor, recolour the terminal or hide text.
 */
import { csvDocument } from '../core/csv.js';
import { sanitiseText } from '../core/text.js';
import { FILE_RULES, LOG_RULES, type RuleMeta } from './rules.js';
import { formatRanges, MAX_FINDINGS } from './analyze.js';
import { KIT_VERSION, kitBanner, rulesRevision } from './version.js';
import { SEVERITY_ORDER, type AnalysisResult, type FindingRecord } from './types.js';

export type OutputFormat = 'text' | 'jsonl' | 'csv';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'jsonl', 'csv'];

export const RECORD_FIELDS = ['check', 'cve', 'severity', 'file', 'line', 'time', 'clientIp', 'evidence'] as const;

/** Makes hostile text safe for a terminal: every unsafe character (core/text.ts) shown as a visible escape. */
export function escapeText(s: string): string {
  return sanitiseText(s, { style: 'escape' });
}

const RULES: ReadonlyMap<string, RuleMeta> = new Map([...LOG_RULES, ...FILE_RULES].map((r) => [r.id, r]));

const IOC_TITLES: Readonly<Record<string, string>> = {
  'ioc-ip': 'Client IP on an IoC list',
  'ioc-user-agent': 'User agent on an IoC list (not an indicator by itself)',
  'ioc-file-name': 'File name on an IoC list',
  'ioc-path': 'Script under a folder on an IoC list',
  'ioc-hash': 'File hash on an IoC list',
  'ioc-log-string': 'Log line matches an IoC rule',
  'ioc-content': 'File content matches an IoC rule',
};

function titleOf(check: string): string {
  return RULES.get(check)?.title ?? IOC_TITLES[check] ?? check;
}

/**
 * JSON.stringify escapes C0 controls but leaves DEL, C1 controls (U+009B is a one-byte CSI to many
 * terminals), bidi overrides, zero-width marks and line separators as they are; a JSONL file is often
 * looked at with `cat` or `less`, so those are written as \u escapes too (still the same JSON value).
 */
function jsonSafe(json: string): string {
  return sanitiseText(json, { style: 'json' });
}

export function formatJsonl(findings: readonly FindingRecord[]): string {
  return findings
    .map((f) => jsonSafe(JSON.stringify({ check: f.check, cve: f.cve, severity: f.severity, file: f.file, line: f.line, time: f.time, clientIp: f.clientIp, evidence: f.evidence })))
    .map((l) => `${l}\n`)
    .join('');
}

/**
 * The first line of `--format jsonl`: one object with a single key `meta` (records never have it), naming
 * the kit, its version and rules revision, the verdict and exit code, the counts and the campaign coverage.
 */
export function formatJsonlMeta(r: AnalysisResult): string {
  const meta = {
    tool: 'tocsin-forensics',
    version: KIT_VERSION,
    rulesRevision: rulesRevision(),
    verdict: r.verdict,
    exitCode: exitCodeOf(r),
    since: r.since,
    counts: r.counts,
    campaigns: r.campaigns.map((c) => ({ campaign: c.campaign, status: c.status, window: c.window, missingDays: c.missingDays, windowDays: c.windowDays, missing: c.missing })),
    coverage: r.coverage.map((c) => ({ folder: c.folder, family: c.family, kind: c.kind, files: c.files, first: c.first, last: c.last, days: c.days.length, gaps: c.gaps })),
  };
  return `${jsonSafe(JSON.stringify({ meta }))}\n`;
}

export function formatCsv(findings: readonly FindingRecord[]): string {
  return csvDocument(RECORD_FIELDS, findings.map((f) => [f.check, f.cve, f.severity, f.file, f.line, f.time, f.clientIp, f.evidence]));
}

function loc(f: FindingRecord): string {
  return f.line === null ? f.file : `${f.file}:${f.line}`;
}

/** The verdict line and counts; printed first in text output and on stderr for jsonl/csv. */
export function formatSummary(r: AnalysisResult): string {
  const { indicators, attempts, indicatorsBeforeSince, attemptsBeforeSince } = r.counts;
  const seen = attempts > 0 ? ` (${attempts} attempt(s) seen)` : '';
  // The counts are over every record found: --since and the in-memory cap hide records from the
  // listing, never from the headline.
  const hidden =
    indicatorsBeforeSince + attemptsBeforeSince > 0 && r.since !== null
      ? `; ${indicatorsBeforeSince} indicator(s) and ${attemptsBeforeSince} attempt(s) dated before --since ${r.since.slice(0, 10)} are not listed`
      : '';
  const head =
    r.verdict === 'indicators-found'
      ? `INDICATORS FOUND: ${indicators} indicator record(s)${attempts > 0 ? `, ${attempts} attempt(s)` : ''}${hidden}`
      : r.verdict === 'no-logs'
        ? `NO LOGS: no Exchange or IIS log found in the input; no indicators in the files checked${seen}, but nothing can be said about exploitation${hidden}`
        : r.verdict === 'insufficient-logs'
          ? `INSUFFICIENT LOGS: no indicators found${seen}, but the logs do not cover every period at risk${hidden}`
          : `NONE FOUND: no indicators${seen}; the logs cover every period at risk${hidden}`;
  const out = [`tocsin forensics: ${head}`];
  out.push(
    `read ${r.stats.files} file(s), ${r.stats.logFiles} log(s) (${r.stats.exchangeLogs} Exchange/IIS), ${r.stats.bytes < 1e6 ? `${(r.stats.bytes / 1e3).toFixed(1)} kB` : `${(r.stats.bytes / 1e6).toFixed(1)} MB`}, ${r.stats.lines} line(s); ` +
      `${r.notices.length} notice(s)${r.hadErrors ? ' (some input could not be read)' : ''}`,
  );
  if (r.counts.notKept > 0) {
    // The cap bounds memory, never the counts above; the listing (every format) stops at it.
    out.push(`  listing capped: ${r.counts.notKept} record(s) beyond the first ${MAX_FINDINGS} are counted above but not listed (narrow the input or use --since)`);
  }
  if (r.verdict === 'insufficient-logs') {
    for (const c of r.campaigns) if (c.status === 'insufficient') out.push(`  ${c.campaign} ${c.window.from}..${c.window.to}: ${escapeText(c.reason)}`);
  }
  out.push(`${kitBanner()}; exit code ${exitCodeOf(r)} (${EXIT_MEANING[exitCodeOf(r)] ?? '?'})`);
  return `${out.join('\n')}\n`;
}

/** The exit codes, as printed by --help of the command and of the bundle. */
export const EXIT_CODES =
  'Exit code: 0 nothing found and the logs cover every campaign window, 1 indicators found, 2 error ' +
  '(unreadable input, or no Exchange or IIS log found), 3 nothing found but the logs are insufficient for a verdict.';

const EXIT_MEANING: Readonly<Record<number, string>> = {
  0: 'nothing found, logs sufficient',
  1: 'indicators found',
  2: 'error',
  3: 'nothing found, logs insufficient for a verdict',
};

export function formatText(r: AnalysisResult): string {
  const L: string[] = [formatSummary(r).trimEnd(), ''];
  L.push('Periods at risk (covered only when the HttpProxy/IIS logs have records on every day of the window)');
  for (const c of r.campaigns) {
    L.push(`  ${c.campaign.padEnd(14)} ${`${c.window.from}..${c.window.to}`.padEnd(23)} ${c.status.padEnd(12)} ${escapeText(c.reason)}`);
    for (const f of c.families) {
      L.push(
        `    ${escapeText(f.family)} (${escapeText(f.folder)})${f.decides ? '' : ' [not a request log]'}: ` +
          (f.missingDays === 0 ? 'every day' : `missing ${f.missingDays} day(s): ${formatRanges(f.missing)}`),
      );
    }
  }
  L.push('');
  L.push('Log coverage (days with dated records, per log family and folder)');
  if (r.coverage.length === 0) L.push('  (no logs with timestamps)');
  for (const c of r.coverage) {
    const span = c.days.length === 0 ? '' : ` ${c.days[0]}..${c.days[c.days.length - 1]}: ${c.days.length} day(s) with records`;
    L.push(`  ${escapeText(c.family)}  ${escapeText(c.folder)}  [${c.kind}, ${c.files} file(s)]${span}`);
    L.push(`    first ${c.first ?? '?'}, last ${c.last ?? '?'}; ${c.gaps.length === 0 ? 'no gaps' : `gaps: ${formatRanges(c.gaps, 10)}`}`);
  }
  L.push('');
  if (r.findings.length > 0) {
    L.push('Findings by check');
    const byCheck = groupBy(r.findings, (f) => f.check);
    const checks = [...byCheck.entries()].sort(
      (a, b) => SEVERITY_ORDER.indexOf(a[1][0]!.severity) - SEVERITY_ORDER.indexOf(b[1][0]!.severity) || a[0].localeCompare(b[0]),
    );
    // CVE lists vary in length (up to three ids), so they go last, after the fixed-width columns.
    for (const [check, fs] of checks) {
      const cve = fs[0]!.cve === null ? '' : `  [${fs[0]!.cve.replace(/,/g, ', ')}]`;
      L.push(`  ${fs[0]!.severity.padEnd(8)} ${String(fs.length).padStart(5)}  ${check.padEnd(32)} ${titleOf(check)}${cve}`);
    }
    L.push('');
    L.push('Timeline by client IP');
    const byIp = groupBy(r.findings, (f) => f.clientIp ?? '(no client IP: files and lines without one)');
    const ips = [...byIp.entries()].map(([ip, fs]) => ({ ip, fs, first: firstTime(fs) })).sort((a, b) => cmp(a.first, b.first));
    for (const { ip, fs } of ips) {
      // Keys are computed once per record, not once per comparison: a log can hold 500,000 records.
      const keyed = fs.map((f) => ({ f, time: f.time ?? '', at: loc(f) }));
      keyed.sort((a, b) => cmp(a.time, b.time) || cmp(a.at, b.at));
      fs.length = 0;
      for (const k of keyed) fs.push(k.f);
      const times = fs.map((f) => f.time).filter((t): t is string => t !== null);
      L.push(`  ${escapeText(ip)}: ${fs.length} record(s)${times.length > 0 ? `, ${times[0]} .. ${times[times.length - 1]}` : ''}`);
      for (const f of fs) {
        L.push(`    ${(f.time ?? '-').padEnd(24)} ${f.severity.padEnd(8)} ${f.check} ${f.cve ?? ''}`.trimEnd());
        L.push(`      at ${escapeText(loc(f))}`);
        L.push(`      ${escapeText(f.evidence)}`);
      }
    }
    L.push('');
    L.push('What to do');
    // Several checks share one remediation: say it once, naming every check it answers.
    const byFix = new Map<string, { titles: string[]; refs: Set<string> }>();
    for (const [check] of checks) {
      const meta = RULES.get(check);
      if (meta === undefined || byCheck.get(check)!.every((f) => f.severity === 'info')) continue;
      const g = byFix.get(meta.remediation) ?? { titles: [], refs: new Set<string>() };
      g.titles.push(meta.title);
      for (const ref of meta.references) g.refs.add(ref);
      byFix.set(meta.remediation, g);
    }
    for (const [fix, g] of byFix) {
      L.push(`  - ${fix}`);
      L.push(`    (for: ${g.titles.join('; ')})`);
      if (g.refs.size > 0) L.push(`    see ${[...g.refs].join(' ')}`);
    }
    if (byFix.size === 0) L.push('  Only attempts were seen: nothing to clean up; patch the server if it is not, and consider blocking the client IPs.');
    L.push('');
  }
  if (r.notices.length > 0) {
    L.push('Notices');
    for (const n of r.notices.slice(0, 200)) L.push(`  ${n.level}: ${escapeText(n.line === null ? n.file : `${n.file}:${n.line}`)}: ${escapeText(n.message)}`);
    if (r.notices.length > 200) L.push(`  ... ${r.notices.length - 200} more (use --format jsonl and read stderr, or fix the input)`);
    L.push('');
  }
  return `${L.join('\n')}`;
}

/**
 * Groups in one pass, appending in place. Copying the group on every append (`[...group, f]`) made text
 * output quadratic: 100,000 log lines took 71 s, 250,000 more than 10 minutes.
 */
export function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = keyOf(it);
    const g = out.get(k);
    if (g === undefined) out.set(k, [it]);
    else g.push(it);
  }
  return out;
}

/** localeCompare, skipped for equal strings (most neighbours share their file and day). */
function cmp(a: string, b: string): number {
  return a === b ? 0 : a.localeCompare(b);
}

/** The earliest time of a group, '~' (after every date) when none is known; one pass, no sort. */
function firstTime(fs: readonly FindingRecord[]): string {
  let m = '~';
  for (const f of fs) if (f.time !== null && f.time < m) m = f.time;
  return m;
}

/**
 * Exit code: 1 indicators found (even when some input could not be read); 2 error: an unreadable input,
 * or no Exchange or IIS log in the input; 3 nothing found but the logs do not cover every campaign window;
 * 0 nothing found and the logs cover every window.
 */
export function exitCodeOf(r: AnalysisResult): number {
  if (r.verdict === 'indicators-found') return 1;
  if (r.hadErrors || r.verdict === 'no-logs') return 2;
  if (r.verdict === 'insufficient-logs') return 3;
  return 0;
}
