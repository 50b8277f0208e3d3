import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { main } from '../../../../scripts/kb-refresh.js';
import { parseCsvRecords } from '../../../core/csv.js';
import { loadTables } from './load.js';
import { deriveMsrcOnlyFixes, diffTables, msrcProductsFromJson } from './refresh.js';
import type { BuildRecord } from './schema.js';
import { parseReleaseName } from './normalise.js';
import { parseSourceDate } from './sources.js';
import { createKb } from './verdict.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/refresh/', import.meta.url));

function quietly<T>(f: () => T): T {
  // kb-refresh prints its diff summary; keep the test output readable.
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const captured: string[] = [];
  process.stdout.write = ((s: string) => captured.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => captured.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    return f();
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    lastOutput = captured.join('');
  }
}
let lastOutput = '';

function rows(dir: string, file: string): Record<string, string>[] {
  return parseCsvRecords(readFileSync(join(dir, file), 'utf8'), []).records;
}

test('kb-refresh derives the tables from a source directory, then reports no change', () => {
  const out = mkdtempSync(join(tmpdir(), 'tocsin-refresh-'));
  try {
    assert.equal(quietly(() => main(['--shared', FIXTURE, '--out', out, '--msrc', join(FIXTURE, 'msrc.json')])), 0, lastOutput);
    assert.match(lastOutput, /builds\.csv: 15 added, 0 changed, 0 removed/);
    const builds = rows(out, 'builds.csv');
    const byBuild = new Map(builds.map((b) => [b.build, b]));
    assert.equal(byBuild.get('15.2.792.5')?.su, 'Feb21SU');
    assert.equal(byBuild.get('15.2.792.5')?.release_date, '2021-02');
    assert.equal(byBuild.get('15.2.221.17')?.cu, 'RTM');
    assert.equal(byBuild.get('15.2.221.17')?.su, 'KB4503027');
    assert.equal(byBuild.get('15.0.847.62')?.cu, 'SP1');
    assert.equal(byBuild.get('14.3.513.0')?.cu, 'SP3 RU32');
    assert.equal(byBuild.get('14.3.224.2')?.cu, 'SP3 RU8 v2');
    assert.equal(byBuild.get('15.2.858.2')?.uncertain, 'true');
    assert.match(byBuild.get('15.2.858.2')?.note ?? '', /UNCERTAIN/);
    assert.doesNotMatch(byBuild.get('15.2.858.2')?.source_path ?? '', /UNCERTAIN/);
    assert.equal(byBuild.get('14.3.328.5')?.uncertain, 'true');

    const fixes = rows(out, 'cve-fixes.csv');
    const f2010 = fixes.find((f) => f.cve === 'CVE-2021-26857');
    assert.equal(f2010?.cu, 'SP3 RU32', '2010 rows take the CU name of the builds table');
    assert.equal(fixes.find((f) => f.cve === 'CVE-2021-26855' && f.edition === 'Exchange Server 2019' && f.cu === 'RTM')?.fixed_build, '15.2.221.18', 'long form normalised');
    assert.equal(fixes.find((f) => f.cu === 'CU9')?.status, 'derived');
    assert.equal(fixes.find((f) => f.cve === 'CVE-2021-1730')?.fix_date, '2021-02-09', 'month-only date pinned by MSRC');
    const check = fixes.filter((f) => f.cve === 'CVE-2021-24085' && f.edition === 'Exchange Server 2019');
    assert.deepEqual(check.map((f) => `${f.fixed_build} ${f.status}`).sort(), ['15.2.792.3 uncertain', '15.2.792.5 confirmed'], 'CHECK row: the later reading is confirmed');
    assert.equal(fixes.find((f) => f.cve === 'CVE-2021-24085' && f.edition === 'Exchange Server 2016')?.status, 'uncertain');
    const cves = rows(out, 'cves.csv');
    assert.deepEqual(cves.map((c) => c.id), ['CVE-2021-1730', 'CVE-2021-24085', 'CVE-2021-26855', 'CVE-2021-26857']);

    // the derived tables load and give verdicts (cve-groups.csv is curated by hand, not derived: one
    // consistent with the derived cves.csv is written here)
    const members = new Map<string, string[]>();
    for (const c of cves) if (c.group !== '' && c.group !== undefined) members.set(c.group, [...(members.get(c.group) ?? []), c.id ?? '']);
    writeFileSync(join(out, 'cve-groups.csv'), `group,headline,cves,references,source\n${[...members].map(([g, m]) => `${g},true,${m.join(' ')},https://example.org/${g},test fixture\n`).join('')}`);
    const kb = createKb(loadTables(out));
    assert.equal(kb.assess('15.2.792.5', 'exact').verdicts.find((v) => v.cve === 'CVE-2021-26855')?.verdict, 'vulnerable');
    assert.equal(kb.assess('15.2.792.10', 'exact').verdicts.find((v) => v.cve === 'CVE-2021-26855')?.verdict, 'not-vulnerable');

    // second run: nothing to do; --check agrees
    assert.equal(quietly(() => main(['--shared', FIXTURE, '--out', out, '--msrc', join(FIXTURE, 'msrc.json')])), 0);
    assert.match(lastOutput, /builds\.csv: 0 added, 0 changed, 0 removed/);
    assert.equal(quietly(() => main(['--shared', FIXTURE, '--out', out, '--msrc', join(FIXTURE, 'msrc.json'), '--check'])), 0, lastOutput);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('kb-refresh prints added, changed and removed rows; curated CVE columns survive', () => {
  const src = mkdtempSync(join(tmpdir(), 'tocsin-refresh-src-'));
  const out = mkdtempSync(join(tmpdir(), 'tocsin-refresh-'));
  try {
    cpSync(FIXTURE, src, { recursive: true });
    assert.equal(quietly(() => main(['--shared', src, '--out', out])), 0, lastOutput);
    const cvesFile = join(out, 'cves.csv');
    writeFileSync(cvesFile, readFileSync(cvesFile, 'utf8').replace(/^CVE-2021-26855,,,,/m, 'CVE-2021-26855,Remote Code Execution,Critical,ProxyLogon,'));
    const b = readFileSync(join(src, 'exchange-builds.csv'), 'utf8')
      .replace('2021-03-16,15.2.858.5', '2021-03-17,15.2.858.5') // changed
      .replace(/^Exchange Server SE,.*\n/m, '') // removed
      .concat('Exchange Server 2019,Exchange Server 2019 CU9 Apr21SU,2021-04-13,15.2.858.10,15.02.0858.010,fixture,learn\n'); // added
    writeFileSync(join(src, 'exchange-builds.csv'), b);
    assert.equal(quietly(() => main(['--shared', src, '--out', out, '--check'])), 1, 'check reports pending changes');
    assert.equal(quietly(() => main(['--shared', src, '--out', out])), 0, lastOutput);
    assert.match(lastOutput, /builds\.csv: 1 added, 1 changed, 1 removed/);
    assert.match(lastOutput, /\+ 15\.2\.858\.10/);
    assert.match(lastOutput, /~ 15\.2\.858\.5 \(release_date\)/);
    assert.match(lastOutput, /- 15\.2\.2562\.17/);
    assert.match(readFileSync(cvesFile, 'utf8'), /^CVE-2021-26855,Remote Code Execution,Critical,ProxyLogon,/m);
  } finally {
    rmSync(src, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
});

test('kb-refresh refuses bad arguments and invalid derived tables without writing', () => {
  const src = mkdtempSync(join(tmpdir(), 'tocsin-refresh-src-'));
  const out = mkdtempSync(join(tmpdir(), 'tocsin-refresh-'));
  try {
    assert.equal(quietly(() => main([])), 2);
    assert.equal(quietly(() => main(['--shared', join(src, 'missing')])), 2);
    cpSync(FIXTURE, src, { recursive: true });
    // a fix row for a CU the builds table does not know
    writeFileSync(join(src, 'exchange-cve-fixes.csv'), `${readFileSync(join(src, 'exchange-cve-fixes.csv'), 'utf8')}CVE-2021-26855,Exchange Server 2016,CU99,15.1.9999.1,x,Mar21SU,\n`);
    assert.equal(quietly(() => main(['--shared', src, '--out', out])), 3, lastOutput);
    assert.match(lastOutput, /15\.1\.9999\.1/);
    assert.throws(() => readFileSync(join(out, 'builds.csv')));
  } finally {
    rmSync(src, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
});

test('release names from every source spelling', () => {
  const cases: [Parameters<typeof parseReleaseName>[0], string, string, string | null][] = [
    ['Exchange Server 2019', 'Exchange Server 2019 CU15 Aug26SU', 'CU15', 'Aug26SU'],
    ['Exchange Server 2019', 'Exchange Server 2019 CU15 (2025H1)', 'CU15', null],
    ['Exchange Server 2019', 'Exchange Server 2019 CU14 Nov24SUv2', 'CU14', 'Nov24SUv2'],
    ['Exchange Server 2016', 'Exchange Version 2016 CU9 + KB4340731', 'CU9', 'KB4340731'],
    ['Exchange Server 2013', 'Exchange Version 2013 SP1 (CU4) + KB4092041', 'SP1', 'KB4092041'],
    ['Exchange Server SE', 'Exchange Server SE RTM May26HU', 'RTM', 'May26HU'],
    ['Exchange Server 2010', 'Update Rollup 6 Exchange Server 2010 SP2', 'SP2 RU6', null],
    ['Exchange Server 2010', 'Update Rollup 8 v1 for Exchange Server 2010 SP3 (recalled)', 'SP3 RU8 v1', null],
    ['Exchange Server 2010', 'Exchange Version 2010 SP2 RU5 v1', 'SP2 RU5 v1', null],
    ['Exchange Server 2010', 'Update Rollup 5 for Exchange Server 2010', 'RTM RU5', null],
    ['Exchange Server 2007', 'Update Rollup 23 for Exchange Server 2007 SP3', 'SP3 RU23', null],
    ['Exchange Server 2007', 'Exchange Server 2007 SP3', 'SP3', null],
  ];
  for (const [edition, name, cu, su] of cases) assert.deepEqual(parseReleaseName(edition, name), { cu, su }, name);
  assert.equal(parseReleaseName('Exchange Server 2019', 'Exchange Server 2016 CU1'), null);
  assert.equal(parseReleaseName('Exchange Server 2019', 'Exchange Server 2019 CU9 something'), null);
});

test('diffTables names the changed columns', () => {
  const d = diffTables([{ k: 'a', v: '1' }, { k: 'b', v: '1' }], [{ k: 'b', v: '2' }, { k: 'c', v: '1' }], (r) => r.k);
  assert.deepEqual(d, { added: ['c'], removed: ['a'], changed: ['b (v)'] });
});

test('kb-refresh adds builds from a saved Learn page and the righel dictionary, reporting conflicts', () => {
  const out = mkdtempSync(join(tmpdir(), 'tocsin-refresh-'));
  try {
    const code = quietly(() =>
      main(['--shared', FIXTURE, '--out', out, '--learn-html', join(FIXTURE, 'learn.html'), '--righel-versions', join(FIXTURE, 'righel-versions.json')]),
    );
    assert.equal(code, 0, lastOutput);
    assert.match(lastOutput, /builds\.csv: 19 added/);
    assert.match(lastOutput, /skipped 15\.2\.858\.12: release date "sometime"/);
    assert.match(lastOutput, /conflict: 15\.2\.792\.3: fixture says 2020-12-15, righel\/ms-exchange-version-nse says 2020-12-16; kept the first/);
    const byBuild = new Map(rows(out, 'builds.csv').map((b) => [b.build, b]));
    const se = byBuild.get('15.2.2562.49');
    assert.equal(se?.edition, 'Exchange Server SE');
    assert.equal(se?.su, 'Sep26SU');
    assert.equal(se?.release_date, '2026-09-08');
    assert.equal(se?.source_repo, 'learn.microsoft.com');
    assert.equal(byBuild.get('15.2.858.10')?.release_date, '2021-04-14', 'columns found by header, not position');
    assert.equal(byBuild.get('8.3.445.0')?.release_date, '2015-12');
    assert.equal(byBuild.get('8.3.445.0')?.cu, 'SP3 RU18');
    assert.equal(byBuild.has('6.5.7654.4'), false, 'Exchange 2003 is out of scope');
    assert.equal(byBuild.has('15.20.9999.1'), false, 'Exchange Online is not on-premises');
    assert.equal(byBuild.get('15.2.792.3')?.source_repo, 'fixture', 'earlier sources win');
    for (const b of byBuild.values()) assert.doesNotMatch(b.name ?? '', /[<>]/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('source dates', () => {
  assert.equal(parseSourceDate('March 8, 2007'), '2007-03-08');
  assert.equal(parseSourceDate('December, 2015'), '2015-12 (month only)');
  assert.equal(parseSourceDate('2021-03-02T08:00:00-08:00'), '2021-03-02');
  assert.equal(parseSourceDate('April, 2096'), null);
  assert.equal(parseSourceDate('Smarch 3, 2020'), null);
  assert.equal(parseSourceDate('March 32, 2020'), null);
});

/** A builds.csv row for the derivation tests. */
function b(edition: string, name: string, cu: string, su: string, date: string, build: string): BuildRecord {
  return { edition, name, cu, su, release_date: date, build, uncertain: 'false', note: '', source_repo: 'fixture', source_path: 'x' };
}

test('CVEs that MSRC lists but no fix source covers get rows from the MSRC extract itself', () => {
  const builds: BuildRecord[] = [
    b('Exchange Server 2016', 'Exchange Server 2016 CU1', 'CU1', '', '2016-03-15', '15.1.396.30'),
    b('Exchange Server 2016', 'Exchange Version 2016 CU1 + KB3184736', 'CU1', 'KB3184736', '2016-09', '15.1.396.37'),
    b('Exchange Server 2016', 'Exchange Server 2016 CU2', 'CU2', '', '2016-06-21', '15.1.466.34'),
    b('Exchange Server 2016', 'Exchange Version 2016 CU2 + KB3184736', 'CU2', 'KB3184736', '2016-09', '15.1.466.37'),
    b('Exchange Server 2016', 'Exchange Version 2016 CU2 + KB3184737', 'CU2', 'KB3184737', '2016-09', '15.1.466.38'),
    b('Exchange Server 2016', 'Exchange Server 2016 CU3', 'CU3', '', '2016-09-20', '15.1.544.27'),
    b('Exchange Server 2010', 'Update Rollup 14 for Exchange Server 2010 SP3', 'SP3 RU14', '', '2016-06-21', '14.3.301.0'),
    b('Exchange Server 2010', 'Update Rollup 15 for Exchange Server 2010 SP3', 'SP3 RU15', '', '2016-09-20', '14.3.319.2'),
    b('Exchange Server 2010', 'Exchange Server 2010 SP3', 'SP3', '', '2013-02-12', '14.3.123.4'),
  ];
  const msrc = msrcProductsFromJson({
    'CVE-2016-9001': {
      '15.1.396': { product: 'Microsoft Exchange Server 2016 Cumulative Update 1', releaseDate: '2016-09-13T07:00:00Z' },
      '15.1.466': { product: 'Microsoft Exchange Server 2016 Cumulative Update 2', releaseDate: '2016-09-13T07:00:00Z' },
      '14.3.123': { product: 'Microsoft Exchange Server 2010 Service Pack 3', releaseDate: '2016-09-13T07:00:00Z' },
      '15.1.544': { product: 'Microsoft Exchange Server 2016 Cumulative Update 3', releaseDate: '2016-12-13T07:00:00Z' },
    },
    'CVE-2016-9002': { '15.1.225': { product: 'Microsoft Exchange Server 2016', releaseDate: '2016-07-01T07:00:00Z' } },
    'CVE-2016-9003': {},
    'CVE-2016-9004': { '15.1.396': { product: 'Microsoft Exchange Server 2016 Cumulative Update 1', releaseDate: '2016-09-13T07:00:00Z' } },
  });
  const { rows, problems } = deriveMsrcOnlyFixes(msrc, builds, new Set(['CVE-2016-9004']));
  const of = (cve: string): string[] => rows.filter((r) => r.cve === cve).map((r) => `${r.edition.slice(-4)} ${r.cu} ${r.fixed_build || '-'} ${r.status} ${r.fix_date}`);
  assert.deepEqual(of('CVE-2016-9001'), [
    '2016 CU1 15.1.396.37 confirmed 2016-09-13', // the one update of CU1 released that month
    '2016 CU2 15.1.466.37 uncertain 2016-09-13', // two that month: the lowest, uncertain
    '2010 SP3 RU15 14.3.319.2 confirmed 2016-09-13', // 2010 "Service Pack 3": the SP3 rollup released then
    '2016 CU3 - uncertain 2016-12-13', // listed, but nothing of it released that month
  ]);
  // The edition as a whole: every CU released before the date, no fixing build, dated.
  assert.deepEqual(of('CVE-2016-9002'), ['2016 CU1 - no-build-fix 2016-07-01', '2016 CU2 - no-build-fix 2016-07-01']);
  assert.deepEqual(of('CVE-2016-9004'), [], 'covered by a fix source: left alone');
  assert.deepEqual(of('CVE-2016-9003'), []);
  assert.ok(problems.some((p) => p.startsWith('CVE-2016-9003: MSRC lists no affected product')), problems.join('; '));
});

test('kb-refresh reads extra fix sources (sources/*-cve-fixes.csv) and adds MSRC-only CVEs', () => {
  const out = mkdtempSync(join(tmpdir(), 'tocsin-refresh-'));
  const msrcFile = join(out, 'msrc-extra.json');
  try {
    mkdirSync(join(out, 'sources'));
    writeFileSync(
      join(out, 'sources', 'bulletin-cve-fixes.csv'),
      'cve,product,cu,first_fixed_build,source,su_name,notes\nCVE-2015-0001,Exchange Server 2019,CU8,15.2.792.10,a bulletin check,Mar21SU,\n',
    );
    const msrc = { ...(JSON.parse(readFileSync(join(FIXTURE, 'msrc.json'), 'utf8')) as object), 'CVE-2021-9999': { '15.2.792': { product: 'Microsoft Exchange Server 2019 Cumulative Update 8', releaseDate: '2021-03-02T08:00:00Z' } } };
    writeFileSync(msrcFile, JSON.stringify(msrc));
    assert.equal(quietly(() => main(['--shared', FIXTURE, '--out', out, '--msrc', msrcFile])), 0, lastOutput);
    const fixes = rows(out, 'cve-fixes.csv');
    assert.equal(fixes.find((f) => f.cve === 'CVE-2015-0001')?.fixed_build, '15.2.792.10', 'row from sources/*-cve-fixes.csv');
    const derived = fixes.find((f) => f.cve === 'CVE-2021-9999');
    assert.equal(derived?.fixed_build, '15.2.792.10', 'the CU8 update released on the MSRC date');
    assert.equal(derived?.status, 'confirmed');
    assert.ok(rows(out, 'cves.csv').some((c) => c.id === 'CVE-2021-9999'));
    // Refreshing again reproduces the same tables.
    assert.equal(quietly(() => main(['--shared', FIXTURE, '--out', out, '--msrc', msrcFile, '--check'])), 0, lastOutput);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
