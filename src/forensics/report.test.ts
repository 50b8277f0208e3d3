import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvCell } from '../core/csv.js';
import { escapeText, exitCodeOf, formatCsv, formatJsonl, formatText } from './report.js';
import { campaignCoverage, verdictOf } from './analyze.js';
import type { AnalysisResult, FindingRecord } from './types.js';

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

function result(findings: FindingRecord[], hadErrors = false): AnalysisResult {
  const campaigns = campaignCoverage([{ folder: 'W3SVC1', kind: 'iis-w3c', files: 1, first: '2021-03-01T00:00:00.000Z', last: '2023-01-01T00:00:00.000Z' }]);
  return {
    verdict: verdictOf(findings, campaigns),
    findings,
    notices: [],
    coverage: [],
    campaigns,
    stats: { files: 1, logFiles: 1, bytes: 10, lines: 1, candidateLines: 1 },
    hadErrors,
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

test('exit codes follow ClamAV: 1 indicators, 0 nothing or attempts only, 2 errors with nothing found', () => {
  assert.equal(exitCodeOf(result([F])), 1);
  assert.equal(exitCodeOf(result([F], true)), 1);
  assert.equal(exitCodeOf(result([{ ...F, severity: 'info' }])), 0);
  assert.equal(exitCodeOf(result([], true)), 2);
  assert.equal(result([]).verdict, 'none-found');
});

test('coverage: logs beginning after 2021-03-03 are insufficient for ProxyLogon; no logs is insufficient', () => {
  const late = campaignCoverage([{ folder: 'x', kind: 'exchange-httpproxy', files: 1, first: '2021-03-05T00:00:00.000Z', last: '2021-09-01T00:00:00.000Z' }]);
  assert.equal(late.find((c) => c.campaign === 'ProxyLogon')?.status, 'insufficient');
  assert.equal(late.find((c) => c.campaign === 'ProxyShell')?.status, 'covered');
  assert.equal(verdictOf([], late), 'insufficient-logs');
  const none = campaignCoverage([]);
  assert.ok(none.every((c) => c.status === 'insufficient'));
  const early = campaignCoverage([{ folder: 'x', kind: 'iis-w3c', files: 1, first: '2020-12-01T00:00:00.000Z', last: '2020-12-31T00:00:00.000Z' }]);
  assert.match(early.find((c) => c.campaign === 'ProxyLogon')!.reason, /before exploitation began/);
});
