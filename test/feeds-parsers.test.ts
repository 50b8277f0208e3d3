/**
 * Each feed parser against the repository's own fixtures (test/fixtures/feeds): columns in another order,
 * BOM and CRLF, quoted commas and quotes, IPv6, a bad IP and a bad port quarantined with their raw line,
 * webshell rows compromised, report-level problems rejecting the file; the XML tokenizer refusing entity
 * declarations; format detection. Pure: no database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { splitLines } from '../src/ingest/lines.js';
import { splitCsvRecord } from '../src/ingest/csv-line.js';
import { detectFormat, formatByName, FEED_FORMATS } from '../src/ingest/registry.js';
import { reportOfFileName } from '../src/ingest/shadowserver.js';
import { xmlEvents, decodeEntities } from '../src/ingest/xml.js';
import { readTime } from '../src/ingest/fields.js';
import type { FeedFormat, FeedItem, FeedRow } from '../src/ingest/types.js';
import { isTocsinError } from '../src/core/errors.js';

const FIX = fileURLToPath(new URL('./fixtures/feeds/', import.meta.url));

async function parseFile(name: string, format?: FeedFormat, reportType: string | null = null): Promise<FeedItem[]> {
  const path = join(FIX, name);
  const f = format ?? detectFormat(readFileSync(path, 'utf8').slice(0, 4096), name, name);
  const out: FeedItem[] = [];
  for await (const item of f.parse(splitLines(createReadStream(path)), { file: name, baseName: name, reportType })) out.push(item);
  return out;
}

async function* of(...chunks: string[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield Buffer.from(c);
}

const rows = (items: readonly FeedItem[]): FeedRow[] => items.flatMap((i) => (i.type === 'row' ? [i.row] : []));
const problems = (items: readonly FeedItem[]): Array<{ line: number; raw: string; error: string }> =>
  items.flatMap((i) => (i.type === 'problem' ? [{ line: i.line, raw: i.raw, error: i.error }] : []));

test('lines: CRLF and LF, a BOM dropped, a line split across chunks, a multi-byte character split across chunks, no trailing newline', async () => {
  const euro = Buffer.from('€');
  const got: string[] = [];
  async function* chunks(): AsyncGenerator<Buffer> {
    yield Buffer.from('\ufeffa,b\r\nc');
    yield Buffer.from(',d\n');
    yield Buffer.concat([Buffer.from('x'), euro.subarray(0, 1)]);
    yield Buffer.concat([euro.subarray(1), Buffer.from('y')]);
  }
  for await (const l of splitLines(chunks())) got.push(`${l.no}:${l.text}`);
  assert.deepEqual(got, ['1:a,b', '2:c,d', '3:x€y']);
  const long: Array<{ text: string; cut?: true }> = [];
  for await (const l of splitLines(of('0123456789', 'abc\nok\n'), 8)) long.push(l);
  assert.deepEqual(long.map((l) => [l.text, l.cut === true]), [['01234567', true], ['ok', false]]);
});

test('csv record: quoted commas, doubled quotes, empty fields, an open quote, a stray quote', () => {
  assert.deepEqual(splitCsvRecord('"a,b",c,"d ""e""",,'), { ok: true, fields: ['a,b', 'c', 'd "e"', '', ''] });
  assert.deepEqual(splitCsvRecord('"open'), { ok: false, error: 'unterminated quoted field', open: true });
  const stray = splitCsvRecord('ab"c,d');
  assert.equal(stray.ok, false);
});

test('Shadowserver file names give the report type and date', () => {
  assert.deepEqual(reportOfFileName('2020-04-03-scan_ics-sample-asn-delayed.csv'), { type: 'scan_ics', date: '2020-04-03' });
  assert.deepEqual(reportOfFileName('2024-07-04-dns_openresolver-123-sample-asn.csv'), { type: 'dns_openresolver', date: '2024-07-04' });
  assert.deepEqual(reportOfFileName('report.csv'), { type: null, date: null });
  assert.deepEqual(reportOfFileName('2021-02-30-scan_exchange-x.csv'), { type: 'scan_exchange', date: null });
});

test('times: Shadowserver UTC, ISO with a zone, Unix seconds; impossible dates refused', () => {
  assert.equal(readTime('2021-05-14 00:11:30'), '2021-05-14T00:11:30.000Z');
  assert.equal(readTime('2021-05-14T02:11:30+02:00'), '2021-05-14T00:11:30.000Z');
  assert.equal(readTime('1717376400'), '2024-06-03T01:00:00.000Z');
  assert.equal(readTime('2021-02-30 00:00:00'), null);
  assert.equal(readTime('yesterday'), null);
});

test('scan_exchange, current layout with BOM and CRLF: Exchange rows, IPv6, webshell, quoted quotes; bad IP and bad port quarantined with their raw line', async () => {
  const items = await parseFile('2024-06-03-scan_exchange-example-asn.csv');
  const r = rows(items);
  assert.deepEqual(r.map((x) => `${x.ip}:${x.port}`), ['192.0.2.10:443', '192.0.2.11:443', '2001:db8::25:443', '198.51.100.7:443']);
  assert.ok(r.every((x) => x.kind === 'exchange' && x.product === 'ms-exchange' && x.reportType === 'scan_exchange' && x.reportDate === '2024-06-03'));
  const first = r[0] as FeedRow;
  assert.equal(first.build, '15.1.2176');
  assert.equal(first.buildPrecision, 'cu');
  assert.deepEqual(first.reportedCves, ['CVE-2021-26855', 'CVE-2021-27065']);
  assert.equal(first.compromised, false);
  assert.equal(first.seenAt, '2024-06-03T01:02:03.000Z');
  assert.equal(first.fields.sector, 'Communications, Service Provider, and Hosting Service');
  assert.equal(first.hostname, 'mail.example.org');
  assert.equal(r[1]?.compromised, true, 'the webshell tag marks the host compromised');
  assert.deepEqual(r[1]?.reportedCves, []);
  assert.equal(r[3]?.fields.sector, 'Government, "Public" Administration');
  const p = problems(items);
  assert.deepEqual(p.map((x) => [x.line, x.error]), [[5, 'bad IP address "192.0.2.300"'], [6, 'bad port "99999"']]);
  assert.ok(p[0]?.raw.includes('bad-ip.example.org') && !p[0].raw.endsWith('\r'), 'raw line kept, without its CR');
});

test('scan_exchange with the columns in another order reads the same fields by name; an empty version is no build', async () => {
  const r = rows(await parseFile('2024-06-04-scan_exchange-reordered.csv'));
  assert.deepEqual(r.map((x) => [x.ip, x.port, x.build, x.compromised]), [
    ['192.0.2.10', 443, '15.1.2176', false],
    ['2001:db8::26', 443, '15.0.1497', true],
    ['203.0.113.5', 443, null, false],
  ]);
});

test('a Shadowserver file missing a required column is rejected before any row; an unknown report type is asked for', async () => {
  await assert.rejects(parseFile('2024-06-05-scan_exchange-no-port.csv'), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_FEED_REJECTED' && /port/.test(e.message));
  const shadowserver = formatByName('shadowserver') as FeedFormat;
  await assert.rejects(parseFile('zmap-example.csv', shadowserver), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_FEED_FORMAT_UNKNOWN');
});

test('special report: exchange;webshell rows are Exchange and compromised, other tags generic (a row without a port is kept)', async () => {
  const r = rows(await parseFile('2024-06-06-special-example.csv'));
  assert.deepEqual(r.map((x) => [x.kind, x.ip, x.port, x.compromised]), [['exchange', '192.0.2.20', 443, true], ['generic', '192.0.2.21', null, false]]);
  assert.equal(r[1]?.fields.tag, 'cyclops-blink');
});

test('--report-type overrides a file name without one', async () => {
  const shadowserver = formatByName('shadowserver') as FeedFormat;
  const items: FeedItem[] = [];
  const text = 'ip,timestamp,port,tag,version\n192.0.2.1,2024-01-01 00:00:00,443,exchange,15.1.2176\n';
  for await (const i of shadowserver.parse(splitLines(of(text)), { file: '-', baseName: '-', reportType: 'scan_exchange' })) items.push(i);
  assert.equal(rows(items)[0]?.reportType, 'scan_exchange');
  assert.equal(rows(items)[0]?.reportDate, '2024-01-01', 'no date in the name: the row\'s own');
});

test('a quoted field spanning lines is one record; a row with too many fields is a problem, not the end of the file', async () => {
  const shadowserver = formatByName('shadowserver') as FeedFormat;
  const text = 'timestamp,ip,detail\n2024-01-01 00:00:00,192.0.2.1,"two\nlines"\n2024-01-01 00:00:00,192.0.2.2,a,b\n2024-01-01 00:00:00,192.0.2.3,ok\n';
  const items: FeedItem[] = [];
  for await (const i of shadowserver.parse(splitLines(of(text)), { file: '-', baseName: '-', reportType: 'scan_http' })) items.push(i);
  assert.deepEqual(rows(items).map((r) => [r.ip, r.kind, r.fields.detail]), [['192.0.2.1', 'generic', 'two\nlines'], ['192.0.2.3', 'generic', 'ok']]);
  assert.deepEqual(problems(items).map((p) => [p.line, p.error]), [[4, '4 field(s), the header has 3']]);
});

test('nmap XML: open ports only, IPv6, service and script output, certificate names; a bad port quarantined', async () => {
  const items = await parseFile('nmap-example.xml');
  const r = rows(items);
  assert.deepEqual(r.map((x) => [x.kind, x.ip, x.port, x.hostname]), [['port-open', '192.0.2.10', 443, 'mail.example.org'], ['port-open', '2001:db8::25', 443, null]]);
  const f = r[0]?.fields ?? {};
  assert.equal(f.service, 'http');
  assert.equal(f.tunnel, 'ssl');
  assert.match(f['http-headers'] ?? '', /X-OWA-Version: 15\.1\.2176\.2/);
  assert.equal(f.cert_cn, 'mail.example.org');
  assert.equal(f.cert_sans, 'mail.example.org autodiscover.example.org');
  assert.equal(r[0]?.seenAt, '2024-06-03T01:00:01.000Z');
  const p = problems(items);
  assert.equal(p.length, 1);
  assert.match(p[0]?.error ?? '', /bad port "70000"/);
  assert.match(p[0]?.raw ?? '', /<port protocol="tcp" portid="70000">/);
  assert.equal(p[0]?.line, 24);
});

test('XML: a DOCTYPE with entity declarations is refused; predefined entities and character references are decoded, nothing else', async () => {
  await assert.rejects(parseFile('nmap-entities.xml'), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_FEED_REJECTED' && /internal subset/.test(e.message));
  assert.equal(decodeEntities('&lt;a&gt; &amp;amp; &#65;&#x42; &lol; &#0;'), '<a> &amp; AB &lol; \ufffd');
  const evs = [];
  for await (const e of xmlEvents(splitLines(of('<a x="1>2" y=\'q\'>t<![CDATA[<raw>]]><b/></a>')), 'x')) evs.push(e.type === 'open' ? `+${e.name}${e.attrs.get('x') ?? ''}` : e.type === 'close' ? `-${e.name}` : `t:${e.text}`);
  assert.deepEqual(evs, ['+a1>2', 't:t', 't:<raw>', '+b', '-b', '-a']);
  await assert.rejects(async () => {
    for await (const e of xmlEvents(splitLines(of('<a><b')), 'x')) void e;
  }, /ends inside a tag/);
});

test('masscan list and JSON: open ports; banners and closed ports skipped; bad address, port and JSON quarantined', async () => {
  const list = await parseFile('masscan-example.lst');
  assert.deepEqual(rows(list).map((x) => `${x.ip} ${x.port}`), ['192.0.2.30 443', '2001:db8::30 8443']);
  assert.deepEqual(problems(list).map((p) => [p.line, p.error]), [[6, 'bad IP address "192.0.2.999"'], [7, 'bad port "77777"']]);
  const json = await parseFile('masscan-example.json');
  assert.deepEqual(rows(json).map((x) => `${x.ip} ${x.port} ${x.seenAt ?? ''}`), ['192.0.2.40 443 2024-06-03T01:00:00.000Z']);
  assert.deepEqual(problems(json).map((p) => [p.line, p.error]), [[6, 'bad port "https"'], [8, 'not a JSON object']]);
});

test('zmap CSV: SYN-ACKs only, by header name; bad address and port quarantined', async () => {
  const items = await parseFile('zmap-example.csv');
  assert.deepEqual(rows(items).map((x) => `${x.ip} ${x.port}`), ['192.0.2.50 443', '2001:db8::51 443']);
  assert.deepEqual(problems(items).map((p) => p.line), [5, 6]);
});

test('format detection by content and name; an unknown file is a coded error', () => {
  const head = (n: string): string => readFileSync(join(FIX, n), 'utf8').slice(0, 4096);
  assert.equal(detectFormat(head('nmap-example.xml'), 'x.xml', 'x').id, 'nmap-xml');
  assert.equal(detectFormat(head('masscan-example.lst'), 'x.txt', 'x').id, 'masscan');
  assert.equal(detectFormat(head('masscan-example.json'), 'x.json', 'x').id, 'masscan');
  assert.equal(detectFormat(head('zmap-example.csv'), 'x.csv', 'x').id, 'zmap');
  assert.equal(detectFormat(head('2024-06-04-scan_exchange-reordered.csv'), 'whatever.csv', 'x').id, 'shadowserver');
  assert.equal(detectFormat('\ufeff"timestamp","ip"\n', 'x.csv', 'x').id, 'shadowserver');
  assert.throws(() => detectFormat('hello\n', 'notes.txt', 'notes.txt'), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_FEED_FORMAT_UNKNOWN');
  assert.deepEqual(FEED_FORMATS.map((f) => f.id), ['nmap-xml', 'masscan', 'zmap', 'shadowserver']);
  assert.throws(() => formatByName('csv'), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_ARG_INVALID');
});
