/**
 * CI conformance of the Shadowserver parser on recorded samples beside the repository
 * (../shared/data/samples/shadowserver; never vendored): IntelMQ's scan_exchange and special test reports,
 * and the published report schema's column lists (every current column of scan_exchange, scan6_exchange and
 * special is readable: a file with exactly those columns, in the schema's order and reversed, parses).
 * With CI=true a missing sample is a failure; elsewhere these tests are skipped when it is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { splitLines } from '../src/ingest/lines.js';
import { shadowserver } from '../src/ingest/shadowserver.js';
import type { FeedItem, FeedRow } from '../src/ingest/types.js';
import { csvRow } from '../src/core/csv.js';

const DIR = fileURLToPath(new URL('../../shared/data/samples/shadowserver/', import.meta.url));
const inCi = process.env.CI === 'true';
const skip = !inCi && !existsSync(DIR) ? 'samples not present (../shared/data/samples/shadowserver)' : false;

async function parse(chunks: AsyncIterable<Buffer | string>, reportType: string): Promise<FeedItem[]> {
  const out: FeedItem[] = [];
  for await (const i of shadowserver.parse(splitLines(chunks), { file: reportType, baseName: '-', reportType })) out.push(i);
  return out;
}

async function* once(text: string): AsyncGenerator<string> {
  yield text;
}

const rows = (items: readonly FeedItem[]): FeedRow[] => items.flatMap((i) => (i.type === 'row' ? [i.row] : []));

test('IntelMQ scan_exchange sample (May 2021 layout): every row an Exchange row, CVE and webshell tags read', { skip }, async () => {
  const items = await parse(createReadStream(join(DIR, 'intelmq-shadowserver-scan_exchange.csv')), 'scan_exchange');
  assert.equal(items.filter((i) => i.type === 'problem').length, 0);
  const r = rows(items);
  assert.equal(r.length, 7);
  assert.ok(r.every((x) => x.kind === 'exchange' && x.port === 443 && x.product === 'ms-exchange'));
  assert.deepEqual(r.map((x) => x.compromised), [false, true, true, false, false, false, false]);
  assert.deepEqual(r.filter((x) => !x.compromised).map((x) => x.reportedCves), Array.from({ length: 5 }, () => ['CVE-2021-26855']));
  // An empty version (row 5) is no build, not a bad row.
  assert.deepEqual(r.map((x) => x.build), ['15.2.721', '15.0.847', '15.0.1178', '15.1.2176', null, '15.2.659', '15.1.1779']);
  assert.equal(r[0]?.fields.sector, 'Communications, Service Provider, and Hosting Service');
  assert.equal(r[0]?.seenAt, '2021-05-14T00:11:30.000Z');
  assert.equal(r[5]?.hostname, null);
});

test('IntelMQ special sample: rows without a port kept as generic rows', { skip }, async () => {
  const items = await parse(createReadStream(join(DIR, 'intelmq-shadowserver-special.csv')), 'special');
  const r = rows(items);
  assert.deepEqual(r.map((x) => [x.kind, x.ip, x.port, x.tags.join(';')]), [
    ['generic', '192.168.0.1', null, 'cyclops-blink'], ['generic', '192.168.0.2', null, 'cyclops-blink'], ['generic', '192.168.0.3', null, 'cyclops-blink'],
  ]);
});

test('the published schema: every current column layout of the Exchange reports parses, in order and reversed', { skip }, async () => {
  const schema = JSON.parse(readFileSync(join(DIR, 'shadowserver-report_schema-exchange-subset.json'), 'utf8')) as { reports: Record<string, { fields: string[] }> };
  for (const type of ['scan_exchange', 'scan6_exchange', 'special']) {
    const fields = schema.reports[type]?.fields ?? [];
    assert.ok(fields.length > 10, `${type} has its field list`);
    const value = (name: string): string => ({
      timestamp: '2026-03-24 10:00:00', ip: type === 'scan6_exchange' ? '2001:db8::1' : '192.0.2.1', port: '443',
      tag: 'exchange;cve-2021-26855', version: '15.1.2507', protocol: 'tcp',
    } as Record<string, string>)[name] ?? `x ${name}, with a comma`;
    for (const order of [fields, [...fields].reverse()]) {
      const text = `${csvRow(order)}\r\n${csvRow(order.map(value))}\r\n`;
      const r = rows(await parse(once(text), type));
      assert.equal(r.length, 1, `${type}: one row`);
      assert.equal(r[0]?.kind, 'exchange');
      // special reports have no version column: Exchange by tag, no build.
      assert.equal(r[0]?.build, type === 'special' ? null : '15.1.2507');
      assert.deepEqual(r[0]?.reportedCves, ['CVE-2021-26855']);
    }
  }
});
