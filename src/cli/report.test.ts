import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ExchangeReport } from '../services/report.js';
import { renderReport, renderScans } from './report.js';

const report: ExchangeReport = {
  scope: { kind: 'latest', scanIds: ['3'], scan: { id: '3', status: 'finished', startedAt: '2026-03-02T10:00:00.000Z', finishedAt: null, targets: 1, ports: [443], attempts: 4, answered: 3, exchangeServers: 2, timedOut: 1, retried: 1, unanswered: 0 } },
  generatedAt: '2026-03-02T11:00:00.000Z',
  hosts: { attempted: 4, distinctIps: 4, answered: 3, byOutcome: { answered: 3, timeout: 1 } },
  exchange: {
    servers: 2,
    services: 2,
    exactBuild: 1,
    exchangeOnline: 0,
    // Hostile text, as if a scanned host had put it there.
    byEdition: [{ edition: '=HYPERLINK("http://evil")', servers: 1 }, { edition: 'Exchange Server 2019', servers: 1 }],
    byEditionCu: [{ edition: '=HYPERLINK("http://evil")', cu: '\u001b[31mCU1', servers: 1 }, { edition: 'Exchange Server 2019', cu: 'CU9', servers: 1 }],
  },
  cves: [{ cve: 'CVE-2021-26855', headline: true, group: 'ProxyLogon', vulnerable: 1, indeterminate: 0 }],
  indeterminate: { anyCve: 0, headline: 0 },
  patched: {
    definition: 'd',
    servers: 2,
    patched: 1,
    vulnerable: 1,
    undetermined: 0,
    patchedShare: 0.5,
    vulnerableShare: 0.5,
    byGroup: [{ group: 'ProxyLogon', cves: ['CVE-2021-26855'], patched: 1, vulnerable: 1, undetermined: 0, patchedShare: 0.5 }],
  },
};

test('report csv: long format, hostile cells neutralised and quoted', () => {
  const csv = renderReport(report, 'csv');
  const lines = csv.split('\r\n');
  assert.equal(lines[0], 'section,item,detail,value');
  assert.ok(lines.includes(`edition,"'=HYPERLINK(""http://evil"")",,1`), csv);
  assert.ok(lines.includes('headline_cve_vulnerable,CVE-2021-26855,ProxyLogon,1'));
  assert.ok(lines.includes('patched,patched_share,,0.5'));
  assert.ok(lines.includes('patched_group,ProxyLogon,patched,1'));
  assert.ok(!lines.some((l) => /^[=+\-@]|,[=+\-@]/.test(l)), 'no cell starts a formula');
});

test('report table: numbers, shares, and no control characters from stored text', () => {
  const text = renderReport(report, 'table');
  assert.match(text, /Tocsin report: scan 3 \(finished/);
  assert.match(text, /Patched share\s+50\.0% \(1 of 2\)/);
  assert.match(text, /CVE-2021-26855\s+ProxyLogon\s+1\s+0/);
   
  assert.ok(!/[\u0000-\u0008\u000b-\u001f]/.test(text), 'escape sequences removed');
});

test('report json is the report itself', () => {
  assert.deepEqual(JSON.parse(renderReport(report, 'json')), report);
});

test('scan list: empty and csv', () => {
  assert.match(renderScans([], 'table'), /No scans stored yet/);
  const scan = report.scope.scan!;
  assert.equal(renderScans([scan], 'csv').split('\r\n')[1], '3,finished,2026-03-02T10:00:00.000Z,,1,443,4,3,2,1,1,0');
  assert.ok(renderScans([scan], 'table').endsWith('\n'), 'the scan table ends its last line');
});

test('scan list: timed-out, retried and unanswered counts; unanswered attempts come with the resume command', () => {
  const scan = { ...report.scope.scan!, timedOut: 5, retried: 7, unanswered: 4 };
  const text = renderScans([scan], 'table');
  assert.match(text.split('\n')[0] ?? '', /timed_out +retried +unanswered/);
  assert.match(text, /scan 3: 4 unanswered; try them again with: tocsin scan --resume 3/);
  assert.doesNotMatch(renderScans([{ ...scan, unanswered: 0 }], 'table'), /--resume/);
  assert.equal(renderScans([scan], 'csv').split('\r\n')[0], 'id,status,started_at,finished_at,targets,ports,attempts,answered,exchange_servers,timed_out,retried,unanswered');
});
