import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createRecordWriter, parseFormat, safeText, toJsonLine, CSV_COLUMNS } from './output.js';
import { csvCell } from '../core/csv.js';
import type { ScanRecord } from '../core/scan-record.js';
import { TocsinError } from '../core/errors.js';

const rec: ScanRecord = {
  ip: '127.1.0.5', port: 443, hostname: null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016',
  build: '15.1.2176.2', buildPrecision: 'exact', cu: 'CU19', su: null, vulnerable: ['CVE-2021-26855', 'CVE-2021-27065'],
  indeterminate: [], evidence: [{ detector: 'x', probe: 'owa-logon', url: 'https://127.1.0.5/owa', where: 'header', name: 'x-owa-version', excerpt: '=HYPERLINK("http://evil")' }],
  scannedAt: '2021-03-10T00:00:00.000Z', status: 200, notes: ['a,b "c"'],
};

async function render(format: 'jsonl' | 'csv' | 'table', records: readonly ScanRecord[]): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const w = createRecordWriter(format, out);
  for (const r of records) await w.write(r);
  await w.close();
  return Buffer.concat(chunks).toString('utf8');
}

test('jsonl: one parseable object per line with the contract fields', async () => {
  const text = await render('jsonl', [rec, { ...rec, ip: '127.1.0.6' }]);
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  const o = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  for (const k of ['ip', 'port', 'hostname', 'tls', 'product', 'edition', 'build', 'buildPrecision', 'cu', 'su', 'vulnerable', 'indeterminate', 'evidence', 'scannedAt']) {
    assert.ok(k in o, k);
  }
  assert.equal(toJsonLine(rec).includes('\n'), false);
});

test('csv: header, quoting, and formula cells neutralised', async () => {
  const text = await render('csv', [{ ...rec, hostname: '=cmd|calc' }]);
  // RFC 4180 line ends: every row, the last included, ends with CRLF.
  assert.ok(text.endsWith('\r\n'));
  const [head, row] = text.trimEnd().split('\r\n');
  assert.equal(head, CSV_COLUMNS.join(','));
  assert.ok(row?.startsWith("127.1.0.5,443,'=cmd|calc,true,ms-exchange,"), row);
  assert.ok(row?.includes('"x header x-owa-version: =HYPERLINK(""http://evil"")"'), row);
  assert.equal(csvCell('=1+1'), "'=1+1");
  assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvCell('a"b'), '"a""b"');
  assert.equal(csvCell('plain'), 'plain');
  assert.match(row ?? '', /"a,b ""c"""/);
  // An empty scan still prints the header.
  assert.equal((await render('csv', [])).trimEnd(), CSV_COLUMNS.join(','));
});

test('table: control characters from hosts never reach the terminal', async () => {
  const hostile = { ...rec, hostname: 'evil\u001b]0;pwned\u0007\u009b31m', cu: 'CU\r19' };
  const text = await render('table', [hostile]);
  assert.doesNotMatch(text.replace(/\n/g, ''), /[\u0000-\u001f\u007f-\u009f]/);
  assert.match(text, /^ADDRESS/);
  assert.match(text, /127\.1\.0\.5:443/);
  assert.match(text, /CVE-2021-26855/);
  assert.equal(safeText('a\u202eb'), 'a?b');
});

test('unknown format is refused', () => {
  assert.throws(() => parseFormat('xml'), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID');
  assert.equal(parseFormat('csv'), 'csv');
});

test('an empty result still prints its header (csv, table) and says nothing answered (table)', async () => {
  const table = await render('table', []);
  assert.match(table, /^ADDRESS .* HOSTNAME \/ VULNERABLE CVES\n\(no host answered HTTP or HTTPS\)\n$/);
  assert.equal(await render('jsonl', []), '');
  assert.ok((await render('csv', [])).startsWith(CSV_COLUMNS.join(',')));
});
