import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { compareCveDisplay, createRecordWriter, cveCell, parseFormat, renderTable, safeText, toJsonLine, CSV_COLUMNS, TABLE_WIDTH } from './output.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';
import { exchange } from '../products/exchange/index.js';

/** Exchange's headline CVEs, from data/exchange/cve-groups.csv. */
const HEADLINE_CVES = exchange.cveGroups().headline;
import { csvCell } from '../core/csv.js';
import type { ScanRecord } from '../core/contracts/scan-record.js';
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

test('writeMany: the same bytes as one write() per record, in one stream write per batch', async () => {
  const records = [rec, { ...rec, ip: '127.1.0.6', hostname: '=cmd|calc' }, { ...rec, ip: '10.0.0.1' }];
  for (const format of ['jsonl', 'csv', 'table'] as const) {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    let writes = 0;
    const write = out.write.bind(out) as (c: unknown) => boolean;
    out.write = ((c: unknown) => {
      writes++;
      return write(c);
    }) as typeof out.write;
    const w = createRecordWriter(format, out);
    await w.writeMany(records.slice(0, 2));
    await w.writeMany([]);
    await w.writeMany(records.slice(2));
    if (format !== 'table') assert.equal(writes, 2, format);
    await w.close();
    assert.equal(Buffer.concat(chunks).toString('utf8'), await render(format, records), format);
  }
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
  assert.match(table, /^ADDRESS .* VULNERABLE CVES \(headline first\)\n\(no host answered HTTP or HTTPS\)\n$/);
  assert.equal(await render('jsonl', []), '');
  assert.ok((await render('csv', [])).startsWith(CSV_COLUMNS.join(',')));
});

// ---------------------------------------------------------------------------------------------------
// The table: sorted, narrow, headline CVEs first, hostile text defused, written whole at close.

const at = (ip: string, port: number, extra: Partial<ScanRecord> = {}): ScanRecord => ({ ...rec, ip, port, ...extra });

/** The data rows of a rendered table (between the header and the blank line before the footer). */
function dataRows(text: string): string[] {
  const lines = text.split('\n');
  const end = lines.indexOf('');
  return lines.slice(1, end);
}

test('table: rows sorted by address numerically (IPv4 before IPv6), then port', async () => {
  const text = await render('table', [
    at('127.1.0.10', 443), at('2001:db8::2', 443), at('127.1.0.9', 443), at('127.1.0.9', 80), at('2001:db8::10', 80),
    at('10.0.0.1', 8443), at('127.1.0.100', 443),
  ]);
  const addrs = dataRows(text).map((l) => l.split(' ')[0]);
  assert.deepEqual(addrs, ['10.0.0.1:8443', '127.1.0.9:80', '127.1.0.9:443', '127.1.0.10:443', '127.1.0.100:443', '[2001:db8::2]:443', '[2001:db8::10]:80']);
});

test('table: headline CVEs come first (ProxyLogon before 2018 CVEs); a fully vulnerable group shows by name', async () => {
  const old = ['CVE-2018-0924', 'CVE-2018-0940', 'CVE-2018-0941', 'CVE-2018-8151', 'CVE-2019-0686'];
  const text = await render('table', [at('127.1.0.1', 443, { vulnerable: [...old, 'CVE-2021-27065', 'CVE-2021-26855'] })]);
  const row = dataRows(text)[0] ?? '';
  assert.match(row, /\s7 +0 CVE-2021-26855,CVE-2021-27065,CVE-2019-0686 \+4$/, row);
  const all = HEADLINE_CVES.filter((h) => h.group === 'ProxyLogon').map((h) => h.cve);
  const text2 = await render('table', [at('127.1.0.1', 443, { vulnerable: [...old, ...all].reverse() })]);
  assert.match(dataRows(text2)[0] ?? '', / ProxyLogon,CVE-2019-0686,CVE-2018-8151 \+3$/);
  // Other CVEs newest first, advisories last.
  assert.deepEqual(['ADV190018', 'CVE-2018-8151', 'CVE-2021-34473', 'CVE-2020-0688', 'CVE-2021-26855'].sort(compareCveDisplay),
    ['CVE-2021-26855', 'CVE-2021-34473', 'CVE-2020-0688', 'CVE-2018-8151', 'ADV190018']);
  assert.equal(cveCell(['CVE-2021-26855', 'CVE-2018-8151'], 5), '+2');
  assert.equal(cveCell([], 30), '');
});

test('table: every line fits 100 columns, with long hostnames and IPv6 addresses', async () => {
  const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.example.org`;
  const many = loadExchangeKb().cves.map((c) => c.id);
  const text = await render('table', [
    at('127.1.0.1', 443, { hostname: long, vulnerable: many }),
    at('2001:db8:1234:5678:9abc:def0:1234:5678', 65535, { hostname: long, vulnerable: many, edition: 'Exchange Server 2010', cu: 'SP3 RU32' }),
    at('127.1.0.2', 80, { product: 'nginx', edition: null, build: null, buildPrecision: null, cu: null, vulnerable: [] }),
  ]);
  const lines = text.trimEnd().split('\n');
  for (const l of lines) assert.ok(l.length <= TABLE_WIDTH, `${l.length}: ${l}`);
  assert.match(text, /^ADDRESS +HOSTNAME +EXCHANGE/);
  assert.match(text, /aaaa…/, 'a long hostname is cut, visibly');
  assert.match(text, /\[2001:db8:1234:5678:9abc:def0:1234:5678\]:65535 /, 'an address is never cut');
  assert.ok(text.includes(` +${many.length}\n`), 'the CVE column keeps room for the count of the rest');
  // IPv4 and a long hostname: the hostname gives way and the CVE column stays readable.
  const v4 = await render('table', [at('127.1.0.1', 443, { hostname: long, vulnerable: many })]);
  for (const l of v4.trimEnd().split('\n')) assert.ok(l.length <= TABLE_WIDTH, `${l.length}: ${l}`);
  assert.match(v4, /127\.1\.0\.1:443 +a{15,}… .* ProxyLogon,ProxyShell +/);
});

test('table: hostile text (control characters, bidi overrides, huge values) is defused and capped', async () => {
  const hostile = at('127.1.0.7', 443, {
    hostname: `x\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202e${'y'.repeat(5000)}`,
    product: `iis\r\n\u001b[1A${'z'.repeat(5000)}`,
    cu: 'CU\u000019',
    build: '15.1\u00002176',
  });
  const text = await render('table', [hostile]);
  assert.doesNotMatch(text.replace(/\n/g, ''), /[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
  for (const l of text.trimEnd().split('\n')) assert.ok(l.length <= TABLE_WIDTH, `${l.length}`);
  assert.ok(text.length < 3000, `${text.length} characters`);
});

test('table: says what VULN and "vulnerable" mean, and how report counts differ', async () => {
  const text = await render('table', [at('127.1.0.1', 443), at('127.1.0.2', 443, { vulnerable: ['CVE-2018-8151'] })]);
  assert.match(text, /VULN: how many CVEs of the knowledge base \(every CVE, not only headline ones\)/);
  assert.match(text, /2 ip:port answered; 2 on-premises Exchange; 2 with at least one CVE vulnerable/);
  assert.match(text, /\(1 with a headline CVE vulnerable, which is what `tocsin report` counts as vulnerable\)/);
});

test('table: nothing is written before close(); then the whole sorted table at once', async () => {
  const out = new PassThrough();
  let written = '';
  out.on('data', (c: Buffer) => (written += c.toString('utf8')));
  const w = createRecordWriter('table', out);
  await w.write(at('127.1.0.2', 443));
  await w.write(at('127.1.0.1', 443));
  await new Promise((r) => setImmediate(r));
  assert.equal(written, '');
  await w.close();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(dataRows(written).map((l) => l.split(' ')[0]), ['127.1.0.1:443', '127.1.0.2:443']);
  assert.deepEqual(renderTable([at('127.1.0.2', 443), at('127.1.0.1', 443)]), written.trimEnd().split('\n'));
});

test('jsonl: evidence keys in contract order whatever order they come in (jsonb reorders them)', () => {
  const fromJsonb = JSON.parse('{"url":"https://127.1.0.5/owa","name":"x-owa-version","probe":"owa-logon","where":"header","excerpt":"15.1","detector":"x"}') as ScanRecord['evidence'][number];
  const line = toJsonLine({ ...rec, evidence: [fromJsonb] });
  assert.ok(line.includes('"evidence":[{"detector":"x","probe":"owa-logon","url":"https://127.1.0.5/owa","where":"header","name":"x-owa-version","excerpt":"15.1"}]'), line);
});

test('headline CVEs: every one is in the knowledge base, with the group data/exchange/cves.csv gives it; no group member is missing', () => {
  const kb = loadExchangeKb();
  const groups = new Set(HEADLINE_CVES.map((h) => h.group).filter((g): g is string => g !== null));
  for (const h of HEADLINE_CVES) {
    const info = kb.cves.find((c) => c.id === h.cve);
    assert.ok(info !== undefined, `${h.cve} is in cves.csv`);
    assert.equal(info.group, h.group, h.cve);
  }
  const members = kb.cves.filter((c) => c.group !== null && groups.has(c.group)).map((c) => c.id).sort();
  assert.deepEqual(members, HEADLINE_CVES.filter((h) => h.group !== null).map((h) => h.cve).sort());
});
