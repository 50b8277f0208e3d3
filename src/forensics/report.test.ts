import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvCell } from '../core/csv.js';
import { escapeText, exitCodeOf, formatCsv, formatJsonl, formatText } from './report.js';
import { campaignCoverage, gapsOf, rangesOf, verdictOf } from './analyze.js';
import type { AnalysisResult, FindingRecord, FolderCoverage } from './types.js';

const F: FindingRecord = {
  check: 'webshell-request',
  cve: null,
  severity: 'high',
  file: 'W3SVC1/u_ex1.log',
  line: 8,
  time: '2021-03-03T07:30:11.000Z',
  clientIp: '198.51.100.7',
  evidence: '=HYPERLINK("x")\u001b[2J\u202eevil',
};

/** Coverage of one folder with records on the given days (first/last from the days). */
function cov(kind: FolderCoverage['kind'], days: readonly string[], folder = 'W3SVC1'): FolderCoverage {
  const sorted = [...days].sort();
  return {
    folder,
    kind,
    family: kind === 'iis-w3c' ? 'IIS W3SVC1' : 'HttpProxy/Ecp',
    files: 1,
    first: sorted.length === 0 ? null : `${sorted[0]}T00:00:00.000Z`,
    last: sorted.length === 0 ? null : `${sorted[sorted.length - 1]}T23:00:00.000Z`,
    days: sorted,
    gaps: gapsOf(sorted),
  };
}

/** Every day from a to b inclusive. */
function span(a: string, b: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${a}T00:00:00Z`); t <= Date.parse(`${b}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

/** Request logs with records on every day of every campaign window. */
const FULL = [...span('2021-02-20', '2021-09-10'), ...span('2022-09-01', '2023-01-10')];

function result(findings: FindingRecord[], hadErrors = false, days: readonly string[] = FULL, exchangeLogs = 1): AnalysisResult {
  const campaigns = campaignCoverage([cov('iis-w3c', days)]);
  const indicators = findings.filter((f) => f.severity !== 'info').length;
  return {
    verdict: verdictOf(indicators, campaigns, exchangeLogs),
    findings,
    counts: { indicators, attempts: findings.length - indicators, indicatorsBeforeSince: 0, attemptsBeforeSince: 0, notKept: 0 },
    notices: [],
    coverage: [],
    campaigns,
    stats: { files: 1, logFiles: 1, exchangeLogs, bytes: 10, lines: 1, candidateLines: 1 },
    hadErrors,
    since: null,
  };
}

test('text output escapes terminal control, bidi and zero-width characters from evidence', () => {
  assert.equal(escapeText('a\u001b[2Jb\r\n\u202e\u200bc\u0085'), 'a\\x1b[2Jb\\r\\n\\u{202e}\\u{200b}c\\x85');
  const t = formatText(result([F]));
  assert.ok(!t.includes('\u001b') && !t.includes('\u202e'));
  assert.match(t, /INDICATORS FOUND/);
  assert.match(t, /198\.51\.100\.7: 1 record/);
  assert.match(t, /W3SVC1\/u_ex1\.log:8/);
});

test('CSV output is formula-injection safe and quotes what needs quoting', () => {
  assert.equal(csvCell('=1+1'), "'=1+1");
  assert.equal(csvCell('-2'), "'-2");
  assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvCell('a,"b"'), '"a,""b"""');
  assert.equal(csvCell(null), '');
  assert.equal(csvCell(8), '8');
  const csv = formatCsv([F]);
  assert.equal(csv.split('\r\n')[0], 'check,cve,severity,file,line,time,clientIp,evidence');
  assert.ok(csv.includes(`,"'=HYPERLINK(""x"")`));
});

test('JSONL records have exactly the documented fields, cve null where none applies', () => {
  const rec = JSON.parse(formatJsonl([F]).trim()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(rec), ['check', 'cve', 'severity', 'file', 'line', 'time', 'clientIp', 'evidence']);
  assert.equal(rec.cve, null);
  assert.equal(rec.line, 8);
});

test('exit codes: 1 indicators, 0 nothing with sufficient logs, 2 errors or no logs, 3 nothing but logs insufficient', () => {
  assert.equal(exitCodeOf(result([F])), 1);
  assert.equal(exitCodeOf(result([F], true)), 1);
  assert.equal(exitCodeOf(result([{ ...F, severity: 'info' }])), 0);
  assert.equal(exitCodeOf(result([], true)), 2);
  assert.equal(result([]).verdict, 'none-found');
  assert.equal(exitCodeOf(result([])), 0);
  // No Exchange or IIS log at all: an error, not "insufficient" and not 0.
  assert.equal(result([], false, [], 0).verdict, 'no-logs');
  assert.equal(exitCodeOf(result([], false, [], 0)), 2);
  // Indicators in files (web shells) still win without logs.
  assert.equal(exitCodeOf(result([F], false, [], 0)), 1);
  // Logs with a gap in a window: 3.
  const gap = FULL.filter((d) => d !== '2021-03-15');
  assert.equal(result([], false, gap).verdict, 'insufficient-logs');
  assert.equal(exitCodeOf(result([], false, gap)), 3);
});

test('coverage per day: one 2020 line and one 2023 file cover no campaign; every day of a window covers it', () => {
  // Finding 7 of issue 6: first and last timestamps alone made this "covered" for all three campaigns.
  const sparse = campaignCoverage([cov('iis-w3c', ['2020-12-01', '2023-01-01'])]);
  assert.ok(sparse.every((c) => c.status === 'insufficient'), JSON.stringify(sparse.map((c) => c.status)));
  assert.equal(sparse.find((c) => c.campaign === 'ProxyLogon')!.missingDays, 32);
  assert.match(sparse.find((c) => c.campaign === 'ProxyLogon')!.reason, /no request-log record on any of the 32 day\(s\)/);
  assert.equal(verdictOf(0, sparse, 1), 'insufficient-logs');

  const full = campaignCoverage([cov('iis-w3c', FULL)]);
  assert.ok(full.every((c) => c.status === 'covered'));

  // One day missing in March 2021: ProxyLogon is not covered, the missing day is named, the others stay covered.
  const hole = campaignCoverage([cov('exchange-httpproxy', FULL.filter((d) => d !== '2021-03-15' && d !== '2021-03-16'), 'Logging/HttpProxy/Ecp')]);
  const pl = hole.find((c) => c.campaign === 'ProxyLogon')!;
  assert.equal(pl.status, 'insufficient');
  assert.deepEqual(pl.missing, [{ from: '2021-03-15', to: '2021-03-16' }]);
  assert.match(pl.reason, /lack 2 of 32 day\(s\) of the window: 2021-03-15\.\.2021-03-16/);
  assert.deepEqual(pl.families.map((f) => [f.family, f.missingDays, f.decides]), [['HttpProxy/Ecp', 2, true]]);
  assert.equal(hole.find((c) => c.campaign === 'ProxyShell')!.status, 'covered');

  // HttpProxy and IIS together cover a window; CSV extracts and other logs do not count.
  const halves = campaignCoverage([cov('iis-w3c', span('2021-02-28', '2021-03-15')), cov('exchange-httpproxy', span('2021-03-16', '2021-03-31'), 'x')]);
  assert.equal(halves.find((c) => c.campaign === 'ProxyLogon')!.status, 'covered');
  const extract = campaignCoverage([cov('csv-table', FULL)]);
  assert.ok(extract.every((c) => c.status === 'insufficient'));
  assert.ok(campaignCoverage([]).every((c) => c.status === 'insufficient'));
});

test('gaps and ranges of days', () => {
  assert.deepEqual(gapsOf(['2020-12-01', '2023-01-01']), [{ from: '2020-12-02', to: '2022-12-31' }]);
  assert.deepEqual(gapsOf(['2021-02-28', '2021-03-01', '2021-03-03']), [{ from: '2021-03-02', to: '2021-03-02' }]);
  assert.deepEqual(rangesOf(['2021-02-27', '2021-02-28', '2021-03-01', '2021-03-05']), [
    { from: '2021-02-27', to: '2021-03-01' },
    { from: '2021-03-05', to: '2021-03-05' },
  ]);
});

test('the text report lists gaps per log family and prints the kit version and rules revision', () => {
  const r = { ...result([]), coverage: [cov('iis-w3c', ['2020-12-01', '2023-01-01'])] };
  const t = formatText({ ...r, campaigns: campaignCoverage(r.coverage), verdict: 'insufficient-logs' });
  assert.match(t, /^tocsin forensics: INSUFFICIENT LOGS/);
  assert.match(t, /IIS W3SVC1 +W3SVC1 +\[iis-w3c, 1 file\(s\)\] 2020-12-01\.\.2023-01-01: 2 day\(s\) with records/);
  assert.match(t, /gaps: 2020-12-02\.\.2022-12-31/);
  assert.match(t, /tocsin-forensics \d+\.\d+\.\d+, rules [0-9a-f]{12}; exit code 3/);
});

/**
 * Counts the array elements handed out through Array.prototype[Symbol.iterator] (spread, for...of,
 * Array.from) while `fn` runs: an operation counter that needs no hook in the code under test.
 * Replacing the iterator turns off V8's fast path, so every spread and for...of goes through it.
 */
function countArrayIteration<T>(fn: () => T): { value: T; steps: number } {
  const proto = Array.prototype as unknown as { [Symbol.iterator]: (this: unknown[]) => Iterator<unknown> };
  const orig = proto[Symbol.iterator];
  let steps = 0;
  proto[Symbol.iterator] = function* (this: unknown[]): Generator<unknown> {
    for (let i = 0; i < this.length; i++) {
      steps++;
      yield this[i];
    }
  };
  try {
    return { value: fn(), steps };
  } finally {
    proto[Symbol.iterator] = orig;
  }
}

test('text output groups records in linear work, not by copying the group on every record (issue 6 scale bug)', () => {
  // 100,000 log lines took 71 s and 250,000 more than 10 minutes: each record was appended by copying its
  // check's and client IP's whole list ([...group, f]), n^2/2 element copies per grouping.
  const n = 2000;
  const findings: FindingRecord[] = [];
  for (let i = 0; i < n; i++) {
    findings.push({ ...F, evidence: 'x', line: n - i, time: `2021-03-03T07:${String(i % 60).padStart(2, '0')}:00.000Z`, clientIp: i % 2 === 0 ? '198.51.100.7' : '203.0.113.50' });
  }
  const { value: text, steps } = countArrayIteration(() => formatText(result(findings)));
  // A handful of passes over the records (grouping, per-IP listing) and the fixed-size tables; the quadratic
  // code made about n^2/2 = 2,000,000 steps here.
  assert.ok(steps < 20 * n, `${steps} array iteration steps for ${n} records`);
  assert.match(text, /198\.51\.100\.7: 1000 record\(s\), 2021-03-03T07:00:00\.000Z \.\. 2021-03-03T07:58:00\.000Z/);
  assert.match(text, /203\.0\.113\.50: 1000 record\(s\), 2021-03-03T07:01:00\.000Z \.\. 2021-03-03T07:59:00\.000Z/);
  assert.match(text, /high +2000 +webshell-request/);
  // Within an IP, records are in time order, then by file:line.
  const ip7 = text.slice(text.indexOf('198.51.100.7: 1000'), text.indexOf('203.0.113.50: 1000'));
  const times = [...ip7.matchAll(/^ {4}(\S+) +high/gm)].map((m) => m[1]!);
  assert.equal(times.length, 1000);
  assert.deepEqual(times, [...times].sort());
  const at = [...ip7.matchAll(/at W3SVC1\/u_ex1\.log:(\d+)/g)].map((m) => Number(m[1]));
  assert.ok(at[0]! < at[1]!, 'equal times are ordered by file:line');
});

test('the summary says when the in-memory record cap was hit (counts still cover every record)', () => {
  const base = result([F]);
  const capped: AnalysisResult = { ...base, counts: { ...base.counts, indicators: 600_001, notKept: 100_000 } };
  const t = formatText(capped);
  assert.match(t, /INDICATORS FOUND: 600001 indicator record\(s\)/);
  assert.match(t, /listing capped: 100000 record\(s\) beyond the first 500000 are counted above but not listed/);
  assert.doesNotMatch(formatText(base), /listing capped/);
});
