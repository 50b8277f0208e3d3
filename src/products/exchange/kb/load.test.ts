import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { TocsinError } from '../../../core/errors.js';
import { dataPath } from '../../../platform/paths.js';
import { parseCsvRecords } from '../../../core/csv.js';
import { loadTables, validateTables, writeKbCache } from './load.js';
import { loadCveGroups } from './groups.js';
import { BUILD_COLUMNS, CVE_COLUMNS, FIX_COLUMNS, type BuildRecord, type CveRecord, type FixRecord } from './schema.js';
import { tryParseBuildNumber, cuKeyOf } from '../../../core/build-number.js';

function read<T>(file: string, cols: readonly string[]): T[] {
  return parseCsvRecords(readFileSync(dataPath('exchange', file), 'utf8'), cols).records as T[];
}
const builds = read<BuildRecord>('builds.csv', BUILD_COLUMNS);
const fixes = read<FixRecord>('cve-fixes.csv', FIX_COLUMNS);
const cves = read<CveRecord>('cves.csv', CVE_COLUMNS);

test('the in-repo tables are valid and complete', () => {
  assert.deepEqual(validateTables(builds, fixes, cves), []);
  const t = loadTables();
  assert.ok(t.builds.length >= 392, `${t.builds.length} builds`);
  assert.ok(t.cves.length >= 149, `${t.cves.length} CVEs`);
  assert.match(t.version, /^[0-9a-f]{12}$/);
  for (const e of ['Exchange Server 2010', 'Exchange Server 2013', 'Exchange Server 2016', 'Exchange Server 2019', 'Exchange Server SE']) {
    assert.ok(t.builds.some((b) => b.edition === e), e);
  }
  // every row keeps its provenance
  assert.ok(t.builds.every((b) => b.source.length > 0));
  assert.ok(t.fixes.every((f) => f.source.length > 0));
});

test('every build parses, no build is listed twice, and each CU belongs to one edition', () => {
  const seen = new Map<string, string>();
  const cuEdition = new Map<string, string>();
  for (const b of builds) {
    const p = tryParseBuildNumber(b.build);
    assert.ok(p !== null, b.build);
    assert.equal(seen.get(b.build), undefined, `duplicate ${b.build}`);
    seen.set(b.build, b.name);
    const key = cuKeyOf(p);
    assert.equal(cuEdition.get(key) ?? b.edition, b.edition, `${key} in two editions`);
    cuEdition.set(key, b.edition);
  }
});

test('every fix row refers to a known CU of its edition', () => {
  const cuNames = new Set(builds.map((b) => `${b.edition}|${b.cu}`));
  const keys = new Map(builds.map((b) => [cuKeyOf(tryParseBuildNumber(b.build) ?? { major: 0, minor: 0, build: 0, revision: null }), b.edition]));
  for (const f of fixes) {
    assert.ok(cuNames.has(`${f.edition}|${f.cu}`), `${f.cve}: ${f.edition} ${f.cu}`);
    if (f.fixed_build !== '') {
      const p = tryParseBuildNumber(f.fixed_build);
      assert.ok(p !== null);
      assert.equal(keys.get(cuKeyOf(p)), f.edition, `${f.cve} ${f.fixed_build}`);
    }
  }
});

test('validation finds each kind of problem', () => {
  const b0 = builds[0] as BuildRecord;
  const f0 = fixes.find((f) => f.status === 'confirmed') as FixRecord;
  const cases: [string, BuildRecord[], FixRecord[], CveRecord[], RegExp][] = [
    ['unparseable build', [...builds, { ...b0, build: '15.2.x.1' }], fixes, cves, /digits and dots/],
    ['long-form build', [...builds, { ...b0, build: '15.02.2562.046' }], fixes, cves, /short form/],
    ['duplicate build with a conflicting name', [...builds, { ...b0, name: 'Something else' }], fixes, cves, /duplicate build/],
    ['edition against the version rule', [...builds, { ...b0, build: '15.1.9999.1' }], fixes, cves, /by version rule/],
    ['bad date', [{ ...b0, release_date: '2021-13-01' }, ...builds.slice(1)], fixes, cves, /release_date/],
    ['fix row for an unknown CU', builds, [...fixes, { ...f0, fixed_build: '15.1.9999.1' }], cves, /in no CU/],
    ['fix row naming the wrong CU', builds, [...fixes, { ...f0, cu: 'CU99' }], cves, /belongs to/],
    ['fix row without a build for an unknown CU', builds, [...fixes, { ...f0, fixed_build: '', status: 'uncertain', cu: 'CU99' }], cves, /no build of/],
    ['confirmed row without a build', builds, [...fixes, { ...f0, fixed_build: '' }], cves, /needs a fixed_build/],
    ['unknown status', builds, [...fixes, { ...f0, status: 'maybe' }], cves, /status must be/],
    ['CVE missing from cves.csv', builds, [...fixes, { ...f0, cve: 'CVE-2099-0001' }], cves, /not in cves.csv/],
    ['bad CVE id', builds, fixes, [...cves, { ...(cves[0] as CveRecord), id: 'CVE-21-1' }], /id must look like/],
    ['bad severity', builds, fixes, [{ ...(cves[0] as CveRecord), severity: 'Severe' }, ...cves.slice(1)], /severity/],
    ['bad config_dependent', builds, fixes, [{ ...(cves[0] as CveRecord), config_dependent: 'maybe' }, ...cves.slice(1)], /config_dependent/],
  ];
  for (const [name, b, f, c, re] of cases) {
    const problems = validateTables(b, f, c);
    assert.ok(problems.some((p) => re.test(p)), `${name}: ${problems.join(' | ') || '(no problems found)'}`);
  }
});

test('loadTables throws TOCSIN_KB_DATA_INVALID listing the problems', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-kb-'));
  try {
    for (const f of ['builds.csv', 'cve-fixes.csv', 'cves.csv', 'cve-groups.csv']) copyFileSync(dataPath('exchange', f), join(dir, f));
    assert.equal(loadTables(dir).builds.length, builds.length);
    const text = readFileSync(join(dir, 'builds.csv'), 'utf8').replace('15.2.2562.17', 'fifteen');
    writeFileSync(join(dir, 'builds.csv'), text);
    assert.throws(
      () => loadTables(dir),
      (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_KB_DATA_INVALID' && e.details.some((d) => d.includes('fifteen')),
    );
    rmSync(join(dir, 'cves.csv'));
    assert.throws(() => loadTables(dir), (e: unknown) => e instanceof TocsinError && e.details.some((d) => d.includes('cannot read')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the build-time cache gives the same tables, and is ignored once a data file changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-kb-cache-'));
  const cache = join(dir, 'cache.json');
  try {
    for (const f of ['builds.csv', 'cve-fixes.csv', 'cves.csv', 'cve-groups.csv']) copyFileSync(dataPath('exchange', f), join(dir, f));
    assert.equal(writeKbCache(dir, cache), true);
    const fromCsv = loadTables(dir, null);
    assert.deepEqual(loadTables(dir, cache), fromCsv);
    // The cache is what a hit reads: a row changed in it (not in the CSV) shows, so the test above compared two paths.
    const c = JSON.parse(readFileSync(cache, 'utf8')) as { builds: Array<{ note: string }> };
    c.builds[0]!.note = 'from the cache';
    writeFileSync(cache, JSON.stringify(c));
    assert.equal(loadTables(dir, cache).builds[0]!.note, 'from the cache');
    // A user's edit of the CSV: the cache no longer matches, the edit is validated and refused as without a cache.
    writeFileSync(join(dir, 'builds.csv'), readFileSync(join(dir, 'builds.csv'), 'utf8').replace('15.2.2562.17', 'fifteen'));
    const problems = (f: () => unknown): readonly string[] => {
      try {
        f();
      } catch (e) {
        if (e instanceof TocsinError && e.code === 'TOCSIN_KB_DATA_INVALID') return e.details;
        throw e;
      }
      assert.fail('no TOCSIN_KB_DATA_INVALID');
    };
    const withCache = problems(() => loadTables(dir, cache));
    assert.ok(withCache.some((d) => d.includes('fifteen')), withCache.join('\n'));
    assert.deepEqual(withCache, problems(() => loadTables(dir, null)));
    // Invalid tables get no cache; a stale one is removed.
    assert.equal(writeKbCache(dir, cache), false);
    assert.throws(() => readFileSync(cache), /ENOENT/);
    // A cache file that is not JSON is no cache.
    writeFileSync(cache, '{');
    writeFileSync(join(dir, 'builds.csv'), readFileSync(dataPath('exchange', 'builds.csv')));
    assert.deepEqual(loadTables(dir, cache), fromCsv);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cve-groups.csv: headline CVEs in display order, checked against the group column of cves.csv', () => {
  const g = loadCveGroups();
  assert.deepEqual(g.groups.filter((x) => x.headline).map((x) => x.name), ['ProxyLogon', 'ProxyShell', 'ProxyNotShell', 'CVE-2023-21529', 'CVE-2024-21410']);
  assert.deepEqual(g.headline.slice(0, 4), [
    { cve: 'CVE-2021-26855', group: 'ProxyLogon' }, { cve: 'CVE-2021-26857', group: 'ProxyLogon' },
    { cve: 'CVE-2021-26858', group: 'ProxyLogon' }, { cve: 'CVE-2021-27065', group: 'ProxyLogon' },
  ]);
  assert.deepEqual(g.headline.at(-1), { cve: 'CVE-2024-21410', group: null });
  assert.equal(g.headline.length, 11);
  // The full knowledge base carries the same groups (one validation, two entry points).
  assert.deepEqual(loadTables().groups, g);
  for (const grp of g.groups) assert.ok(grp.source.trim() !== '' && grp.references.length > 0, grp.name);
});

test('cve-groups.csv problems are refused with TOCSIN_KB_DATA_INVALID, each named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-kb-groups-'));
  try {
    for (const f of ['builds.csv', 'cve-fixes.csv', 'cves.csv', 'cve-groups.csv']) copyFileSync(dataPath('exchange', f), join(dir, f));
    const original = readFileSync(join(dir, 'cve-groups.csv'), 'utf8');
    const refused = (edit: (text: string) => string, needle: string): void => {
      writeFileSync(join(dir, 'cve-groups.csv'), edit(original));
      for (const load of [() => loadCveGroups(dir), () => loadTables(dir)]) {
        assert.throws(load, (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_KB_DATA_INVALID' && e.details.some((d) => d.includes(needle)), needle);
      }
    };
    // A member that cves.csv puts in no such group; a group of cves.csv left out; a headline row after the others.
    refused((t) => t.replace('CVE-2021-26855 CVE-2021-26857', 'CVE-2021-26855 CVE-2021-1730 CVE-2021-26857'), 'not in that group: CVE-2021-1730');
    refused((t) => t.split('\n').filter((l) => !l.startsWith('ProxyToken,')).join('\n'), 'group ProxyToken is not listed');
    refused((t) => `${t.trimEnd()}\nLate,true,CVE-2021-1730,https://example.org/x,test\n`, 'headline rows must come before');
    refused((t) => t.replace('CVE-2023-21529,true,CVE-2023-21529', 'CVE-2023-21529,yes,CVE-2023-21529'), 'headline must be true or false');
    refused((t) => t.replace('ProxyShell,true,CVE-2021-34473', 'ProxyShell,true,CVE-2099-0001 CVE-2021-34473'), 'CVE-2099-0001 is not in cves.csv');
    rmSync(join(dir, 'cve-groups.csv'));
    assert.throws(() => loadTables(dir), (e: unknown) => e instanceof TocsinError && e.details.some((d) => d.includes('cve-groups.csv: cannot read')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
