/**
 * CI-only conformance: a real contact export of fody / certbund-contact (../shared/data/samples/shadowserver/
 * fody-example-contacts-1.csv: as_or_cidr, organization, comment, contact) reads with the CSV format's aliases,
 * without a single problem, and imports idempotently. Outside CI a missing sample skips; with CI=true it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/platform/paths.js';
import { parseConstituencyCsv } from '../src/constituency/index.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { importConstituency } from '../src/services/constituency.js';
import { testEachBackend } from './helpers/db.js';

const SAMPLE = join(packageRoot(), '..', 'shared', 'data', 'samples', 'shadowserver', 'fody-example-contacts-1.csv');
const present = existsSync(SAMPLE);
const skip = !present && process.env.CI !== 'true' ? 'no ../shared/data/samples here (only required in CI)' : false;

test('fody contact export: every row read, AS and CIDR values told apart, comma-separated contacts split', { skip }, () => {
  assert.ok(present, `missing ${SAMPLE} (CI=true)`);
  const r = parseConstituencyCsv('fody.csv', readFileSync(SAMPLE, 'utf8'));
  assert.deepEqual(r.rejected, []);
  assert.deepEqual(r.problems, []);
  assert.equal(r.rowsRead.get('fody.csv'), 16);
  const org = (name: string): (typeof r.records)[number] => {
    const o = r.records.find((x) => x.name === name);
    assert.ok(o, name);
    return o;
  };
  assert.deepEqual(r.records.map((x) => x.name), ['CERT Example 1', 'CERT Example 2', 'CERT State', 'Agency A', 'Test Überall']);
  assert.deepEqual(org('CERT State').asns.map((a) => a.asn), [64496, 64497]);
  assert.deepEqual(org('CERT State').networks.map((n) => n.cidrs[0]), ['192.168.128.0/20']);
  assert.deepEqual(org('CERT Example 2').contacts.map((c) => c.email).sort(), ['aert@example.com', 'bert@example.com', 'dert@example.com']);
  assert.deepEqual(org('Agency A').networks.map((n) => n.cidrs[0]), ['198.51.100.24/32', '2001:db8::/32']);
  assert.deepEqual(org('Test Überall').networks.map((n) => n.cidrs[0]), ['2001:db8:1234::/48']);
});

testEachBackend('fody contact export imports, and imports again without a change', async ({ database }) => {
  if (skip !== false) return;
  assert.ok(present, `missing ${SAMPLE} (CI=true)`);
  const store = createConstituencyStore(database.db);
  const req = { files: [{ name: 'fody.csv', bytes: readFileSync(SAMPLE) }], format: 'auto' as const, who: 'ci', source: 'fody' };
  const first = await importConstituency(store, req);
  assert.equal(first.files[0]?.imported, 16);
  const audits = await store.auditCount();
  const second = await importConstituency(store, req);
  assert.equal(second.files[0]?.unchanged, 16);
  assert.equal(await store.auditCount(), audits);
  assert.deepEqual((await store.networksContaining('203.0.113.10')).map((n) => `${n.org} ${n.network}`), ['CERT Example 2 203.0.113.10/32', 'CERT Example 1 203.0.113.0/24']);
});
