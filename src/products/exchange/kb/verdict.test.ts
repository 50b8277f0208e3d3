/**
 * Verdict tables at every CU/SU boundary of the headline CVEs, written out by hand from Microsoft's
 * published builds (so a data or logic regression shows up as a named build), plus properties checked
 * over the whole table: uncertain rows never give "not-vulnerable", fixing builds are fixed, the build
 * below them is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareBuilds, cuKeyOf, parseBuildNumber } from '../../../core/build-number.js';
import { TocsinError } from '../../../core/errors.js';
import { loadExchangeKb, type BuildPrecision, type Verdict } from './index.js';

const kb = loadExchangeKb();
const V: Verdict = 'vulnerable';
const N: Verdict = 'not-vulnerable';
const I: Verdict = 'indeterminate';

function verdict(build: string, cve: string, precision: BuildPrecision = 'exact'): Verdict {
  const a = kb.assess(build, precision);
  const v = a.verdicts.find((x) => x.cve === cve);
  assert.ok(v !== undefined, `${cve} missing from the verdicts for ${build}`);
  return v.verdict;
}

/** [build, precision, expected] rows, checked for every CVE of a group. */
type Row = readonly [string, BuildPrecision, Verdict, string];

function table(cves: readonly string[], rows: readonly Row[]): void {
  for (const cve of cves) {
    for (const [build, precision, expected, why] of rows) {
      const a = kb.assess(build, precision);
      const got = a.verdicts.find((x) => x.cve === cve);
      assert.equal(got?.verdict, expected, `${cve} @ ${build} (${precision}): ${why}; reason given: ${got?.reason}`);
    }
  }
}

const PROXYLOGON = ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'];

test('ProxyLogon: every CU that got the March 2021 SU, at the boundary', () => {
  table(PROXYLOGON, [
    ['15.2.792.5', 'exact', V, '2019 CU8 Feb21SU, below Mar21SU'],
    ['15.2.792.10', 'exact', N, '2019 CU8 Mar21SU'],
    ['15.2.792.15', 'exact', N, '2019 CU8 May21SU, later SU'],
    ['15.2.792', 'cu', I, '2019 CU8 at CU level: Mar21SU exists'],
    ['15.2.721.8', 'exact', V, '2019 CU7 Feb21SU'],
    ['15.2.721.13', 'exact', N, '2019 CU7 Mar21SU'],
    ['15.2.659.11', 'exact', V, '2019 CU6 Dec20SU'],
    ['15.2.659.12', 'exact', N, '2019 CU6 Mar21SU'],
    ['15.2.221.12', 'exact', V, '2019 RTM'],
    ['15.2.221.18', 'exact', N, '2019 RTM Mar21SU'],
    ['15.2.221', 'cu', I, '2019 RTM at CU level'],
    ['15.2.858.5', 'exact', N, '2019 CU9 came after the fix'],
    ['15.2.858', 'cu', N, '2019 CU9 at CU level came after the fix'],
    ['15.2.922.7', 'exact', N, '2019 CU10'],
    ['15.1.2176.4', 'exact', V, '2016 CU19 Feb21SU'],
    ['15.1.2176.9', 'exact', N, '2016 CU19 Mar21SU'],
    ['15.1.2176.12', 'exact', N, '2016 CU19 Apr21SU'],
    ['15.1.2176', 'cu', I, '2016 CU19 at CU level'],
    ['15.1.2106.8', 'exact', V, '2016 CU18 Feb21SU'],
    ['15.1.2106.13', 'exact', N, '2016 CU18 Mar21SU'],
    ['15.1.2242.4', 'exact', N, '2016 CU20 came after the fix'],
    ['15.1.2242', 'cu', N, '2016 CU20 at CU level'],
    ['15.1.1591.18', 'exact', N, '2016 CU11 Mar21SU'],
    ['15.1.1415.7', 'exact', V, '2016 CU8 May18SU'],
    ['15.1.1415.10', 'exact', N, '2016 CU8 Mar21SU (Learn build)'],
    ['15.1.1261.39', 'exact', V, '2016 CU7: out of support in March 2021, never got the fix'],
    ['15.1.1261', 'cu', V, '2016 CU7 at CU level: no SU exists, vulnerable whatever the revision'],
    ['15.0.1497.10', 'exact', V, '2013 CU23 Dec20SU'],
    ['15.0.1497.12', 'exact', N, '2013 CU23 Mar21SU'],
    ['15.0.1497.48', 'exact', N, '2013 CU23 Mar23SU'],
    ['15.0.1497', 'cu', I, '2013 CU23 at CU level'],
    ['15.0.1473.5', 'exact', V, '2013 CU22 Jun19SU'],
    ['15.0.1473.6', 'exact', N, '2013 CU22 Mar21SU'],
    ['15.0.1395.10', 'exact', V, '2013 CU21 Jan19SU'],
    ['15.0.1395.12', 'exact', N, '2013 CU21 Mar21SU'],
    ['15.0.1367.9', 'exact', V, '2013 CU20: never got the fix'],
    ['15.0.1365.7', 'exact', V, '2013 CU19: never got the fix'],
  ]);
});

test('ProxyLogon: per-CVE differences (2013 SP1 and 2016 CU12 rows, Exchange 2010)', () => {
  // CVE-2021-26857 lists 2013 SP1 (CU4); CVE-2021-26855 does not (only an UNCERTAIN row from HealthChecker).
  assert.equal(verdict('15.0.847.64', 'CVE-2021-26857'), N);
  assert.equal(verdict('15.0.847.62', 'CVE-2021-26857'), V);
  assert.equal(verdict('15.0.847.64', 'CVE-2021-26855'), I);
  assert.equal(verdict('15.0.847.62', 'CVE-2021-26855'), V);
  assert.equal(verdict('15.1.1713.10', 'CVE-2021-26855'), I, '2016 CU12 Mar21SU is only an uncertain row');
  assert.equal(verdict('15.1.1713.9', 'CVE-2021-26855'), V);
  // Exchange 2010 SP3 got Update Rollup 32 for CVE-2021-26857 only.
  assert.equal(verdict('14.3.513.0', 'CVE-2021-26857'), N);
  assert.equal(verdict('14.3.509.0', 'CVE-2021-26857'), V);
  assert.equal(verdict('14.2.390.3', 'CVE-2021-26857'), V, '2010 SP2: long out of support');
  assert.equal(verdict('14.3.509.0', 'CVE-2021-26855'), N, '2010 was serviced in March 2021 and not listed for 26855');
});

test('ProxyShell: code fix in April 2021 (34473, 34523) and May 2021 (31207)', () => {
  table(['CVE-2021-34473', 'CVE-2021-34523'], [
    ['15.2.858.5', 'exact', V, '2019 CU9 RTM'],
    ['15.2.858.10', 'exact', N, '2019 CU9 Apr21SU'],
    ['15.2.858', 'cu', I, '2019 CU9 at CU level'],
    ['15.2.792.10', 'exact', V, '2019 CU8 Mar21SU'],
    ['15.2.792.13', 'exact', N, '2019 CU8 Apr21SU'],
    ['15.2.922.7', 'exact', N, '2019 CU10 came after the fix'],
    ['15.2.721.13', 'exact', V, '2019 CU7: last update Mar21SU, never got the fix'],
    ['15.2.721', 'cu', V, '2019 CU7 at CU level'],
    ['15.1.2242.4', 'exact', V, '2016 CU20 RTM'],
    ['15.1.2242.8', 'exact', N, '2016 CU20 Apr21SU'],
    ['15.1.2176.9', 'exact', V, '2016 CU19 Mar21SU'],
    ['15.1.2176.12', 'exact', N, '2016 CU19 Apr21SU'],
    ['15.1.2308.8', 'exact', N, '2016 CU21 came after the fix'],
    ['15.1.2106.13', 'exact', V, '2016 CU18: never got the fix'],
    ['15.0.1497.12', 'exact', V, '2013 CU23 Mar21SU'],
    ['15.0.1497.15', 'exact', N, '2013 CU23 Apr21SU'],
  ]);
  table(['CVE-2021-31207'], [
    ['15.2.858.10', 'exact', V, '2019 CU9 Apr21SU'],
    ['15.2.858.12', 'exact', N, '2019 CU9 May21SU'],
    ['15.2.792.13', 'exact', V, '2019 CU8 Apr21SU'],
    ['15.2.792.15', 'exact', N, '2019 CU8 May21SU'],
    ['15.1.2242.8', 'exact', V, '2016 CU20 Apr21SU'],
    ['15.1.2242.10', 'exact', N, '2016 CU20 May21SU'],
    ['15.1.2176.12', 'exact', V, '2016 CU19 Apr21SU'],
    ['15.1.2176.14', 'exact', N, '2016 CU19 May21SU'],
    ['15.0.1497.15', 'exact', V, '2013 CU23 Apr21SU'],
    ['15.0.1497.18', 'exact', N, '2013 CU23 May21SU'],
    ['15.2.922.7', 'exact', N, '2019 CU10 came after the fix'],
  ]);
});

test('ProxyNotShell: fixed in the November 2022 SU', () => {
  table(['CVE-2022-41040', 'CVE-2022-41082'], [
    ['15.2.1118.15', 'exact', V, '2019 CU12 Oct22SU (mitigations only)'],
    ['15.2.1118.20', 'exact', N, '2019 CU12 Nov22SU'],
    ['15.2.1118', 'cu', I, '2019 CU12 at CU level'],
    ['15.2.986.30', 'exact', V, '2019 CU11 Oct22SU'],
    ['15.2.986.36', 'exact', N, '2019 CU11 Nov22SU'],
    ['15.2.1258.12', 'exact', N, '2019 CU13 came after the fix'],
    ['15.2.922.27', 'exact', V, '2019 CU10: never got the fix'],
    ['15.1.2507.13', 'exact', V, '2016 CU23 Oct22SU'],
    ['15.1.2507.16', 'exact', N, '2016 CU23 Nov22SU'],
    ['15.1.2375.32', 'exact', V, '2016 CU22 Oct22SU'],
    ['15.1.2375.37', 'exact', N, '2016 CU22 Nov22SU'],
    ['15.1.2308.27', 'exact', V, '2016 CU21: never got the fix'],
    ['15.0.1497.42', 'exact', V, '2013 CU23 Oct22SU'],
    ['15.0.1497.44', 'exact', N, '2013 CU23 Nov22SU'],
    ['15.2.2562.17', 'exact', N, 'SE RTM came long after'],
  ]);
});

test('CVE-2023-21529: fixed in the February 2023 SU', () => {
  table(['CVE-2023-21529'], [
    ['15.2.1118.21', 'exact', V, '2019 CU12 Jan23SU'],
    ['15.2.1118.25', 'exact', N, '2019 CU12 Feb23SU'],
    ['15.2.986.37', 'exact', V, '2019 CU11 Jan23SU'],
    ['15.2.986.41', 'exact', N, '2019 CU11 Feb23SU'],
    ['15.2.1258.12', 'exact', N, '2019 CU13 came after the fix'],
    ['15.1.2507.17', 'exact', V, '2016 CU23 Jan23SU'],
    ['15.1.2507.21', 'exact', N, '2016 CU23 Feb23SU'],
    ['15.1.2507', 'cu', I, '2016 CU23 at CU level'],
    ['15.1.2375.37', 'exact', V, '2016 CU22: last update Nov22SU, never got the fix'],
    ['15.0.1497.45', 'exact', V, '2013 CU23 Jan23SU'],
    ['15.0.1497.47', 'exact', N, '2013 CU23 Feb23SU'],
  ]);
});

test('CVE-2024-21410: Extended Protection, configuration-dependent', () => {
  table(['CVE-2024-21410'], [
    ['15.2.1544.4', 'exact', N, '2019 CU14 enables Extended Protection by default'],
    ['15.2.1544', 'cu', N, 'every build of 2019 CU14 is at or above the fix'],
    ['15.2.1544.9', 'exact', N, '2019 CU14 Mar24SU'],
    ['15.2.1748.10', 'exact', N, '2019 CU15 came after'],
    ['15.2.1258.32', 'exact', I, '2019 CU13: protected only if Extended Protection is on'],
    ['15.2.1258', 'cu', I, '2019 CU13 at CU level'],
    ['15.1.2507.37', 'exact', I, '2016 CU23: protected only if Extended Protection is on'],
    ['15.2.1118.40', 'exact', V, '2019 CU12: out of support in February 2024'],
    ['15.1.2375.37', 'exact', V, '2016 CU22: out of support'],
    ['15.2.2562.17', 'exact', N, 'SE RTM came after the 2019 fix'],
  ]);
  const a = kb.assess('15.2.1258.32', 'exact').verdicts.find((v) => v.cve === 'CVE-2024-21410');
  assert.match(a?.reason ?? '', /Extended Protection/);
  const fixed = kb.assess('15.2.1544.4', 'exact').verdicts.find((v) => v.cve === 'CVE-2024-21410');
  assert.match(fixed?.reason ?? '', /configuration can undo this/);
  const old = kb.assess('15.2.1118.40', 'exact').verdicts.find((v) => v.cve === 'CVE-2024-21410');
  assert.match(old?.reason ?? '', /configuration-dependent/);
});

test('revision drift maps to the nearest listed build of the same CU, and says so', () => {
  const a = kb.assess('15.2.858.2', 'exact');
  assert.equal(a.known, true);
  assert.equal(a.edition, 'Exchange Server 2019');
  assert.equal(a.cu, 'CU9');
  assert.equal(a.listedBuild, '15.2.858.5');
  assert.ok(a.notes.some((n) => n.includes('15.2.858.5')), a.notes.join('\n'));
  assert.equal(verdict('15.2.858.2', 'CVE-2021-26855'), N, 'CU9 came after ProxyLogon');
  assert.equal(verdict('15.2.858.2', 'CVE-2021-34473'), V, 'CU9 RTM is below Apr21SU');

  const between = kb.assess('15.1.2176.10', 'exact');
  assert.equal(between.listedBuild, '15.1.2176.9');
  assert.ok(between.notes.some((n) => n.includes('nearest')));
  assert.equal(verdict('15.1.2176.10', 'CVE-2021-26855'), N);
  assert.equal(verdict('15.1.2176.10', 'CVE-2021-34473'), V);
  // 2176.11 is nearer to the Apr21SU build 2176.12 than to 2176.9: mapping up across a fix is not proof.
  assert.equal(kb.assess('15.1.2176.11', 'exact').listedBuild, '15.1.2176.12');
  assert.equal(verdict('15.1.2176.11', 'CVE-2021-34473'), I);

  const newer = kb.assess('15.2.1748.51', 'exact');
  assert.equal(newer.listedBuild, '15.2.1748.49');
  assert.ok(newer.notes.some((n) => n.includes('newer than any listed build')));
  assert.equal(verdict('15.2.1748.51', 'CVE-2022-41082'), N);
});

test('Subscription Edition, Exchange Online and unknown builds', () => {
  const se = kb.assess('15.2.2562.17', 'exact');
  assert.equal(se.edition, 'Exchange Server SE');
  assert.equal(se.cu, 'RTM');
  assert.equal(kb.editionOf('15.2.2562.17'), 'Exchange Server SE');
  assert.equal(kb.editionOf('15.02.2562.999'), 'Exchange Server SE');
  assert.equal(kb.editionOf('15.2.2561.1'), 'Exchange Server 2019');
  assert.equal(kb.editionOf('15.2.1748.10'), 'Exchange Server 2019');
  assert.equal(kb.editionOf('15.1.2507.6'), 'Exchange Server 2016');
  assert.equal(kb.editionOf('15.0.1497.2'), 'Exchange Server 2013');
  assert.equal(kb.editionOf('14.3.513.0'), 'Exchange Server 2010');
  assert.equal(kb.editionOf('8.3.517.0'), 'Exchange Server 2007');
  assert.equal(kb.editionOf('15.20.4308.27'), null);
  assert.equal(kb.editionOf('16.0.1.1'), null);

  const online = kb.assess('15.20.4308.27', 'exact');
  assert.equal(online.known, false);
  assert.equal(online.edition, null);
  assert.equal(online.verdicts.length, kb.cves.length);
  assert.ok(online.verdicts.every((v) => v.verdict === 'indeterminate'));

  for (const b of ['15.2.2600.1', '15.1.9999.1', '15.0.1498.1', '15.3.1.1']) {
    const u = kb.assess(b, 'exact');
    assert.equal(u.known, false, b);
    assert.equal(u.verdicts.length, kb.cves.length);
    assert.ok(u.verdicts.every((v) => v.verdict === 'indeterminate'), b);
    assert.deepEqual([...u.indeterminate].sort(), kb.cves.map((c) => c.id).sort());
  }
  assert.equal(kb.assess('15.2.2600.1', 'exact').edition, 'Exchange Server SE');
});

test('garbage input throws TOCSIN_KB_UNKNOWN_BUILD; a missing revision means CU level', () => {
  assert.throws(() => kb.assess('not-a-build', 'exact'), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_KB_UNKNOWN_BUILD');
  const a = kb.assess('15.1.2176', 'exact');
  assert.equal(a.precision, 'cu');
  assert.equal(a.su, null);
  assert.equal(a.listedBuild, null);
});

test('one verdict per CVE, lists consistent, results memoised and frozen', () => {
  const a = kb.assess('15.1.2176.9', 'exact');
  assert.equal(a.verdicts.length, kb.cves.length);
  assert.deepEqual(a.verdicts.map((v) => v.cve), kb.cves.map((c) => c.id));
  assert.deepEqual(a.vulnerable, a.verdicts.filter((v) => v.verdict === 'vulnerable').map((v) => v.cve));
  assert.deepEqual(a.indeterminate, a.verdicts.filter((v) => v.verdict === 'indeterminate').map((v) => v.cve));
  assert.ok(a.verdicts.every((v) => v.reason.length > 0));
  assert.equal(kb.assess('15.1.2176.9', 'exact'), a);
  assert.equal(kb.assess('15.01.2176.009', 'exact').input, '15.1.2176.9');
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.verdicts));
  assert.equal(loadExchangeKb(), kb, 'loader is cached');
  // hostile inputs: every revision above the newest listed build shares one verdict list
  const x = kb.assess('15.1.2176.100', 'exact');
  const y = kb.assess('15.1.2176.65000', 'exact');
  assert.notEqual(x, y);
  assert.equal(x.verdicts, y.verdicts);
  assert.equal(kb.assess('15.1.9999.1', 'exact').verdicts, kb.assess('15.1.9999.2', 'exact').verdicts);
});

test('property: an uncertain fix row alone never yields not-vulnerable in its CU', () => {
  let checked = 0;
  for (const f of kb.fixes) {
    if (f.status !== 'uncertain' || f.fixedBuild === null) continue;
    const key = cuKeyOf(parseBuildNumber(f.fixedBuild));
    const confirmed = kb.fixes.some((g) => g.cve === f.cve && g.status === 'confirmed' && g.fixedBuild !== null && cuKeyOf(parseBuildNumber(g.fixedBuild)) === key);
    if (confirmed) continue;
    for (const b of kb.builds) {
      if (cuKeyOf(parseBuildNumber(b.build)) !== key) continue;
      assert.notEqual(verdict(b.build, f.cve), N, `${f.cve} @ ${b.build}: only an uncertain row says fixed`);
      checked++;
    }
  }
  assert.ok(checked > 50, `checked ${checked}`);
});

test('property: an uncertain build row never yields not-vulnerable where its SU name is the fix', () => {
  let checked = 0;
  for (const b of kb.builds.filter((r) => r.uncertain && r.su !== null)) {
    const key = cuKeyOf(parseBuildNumber(b.build));
    for (const f of kb.fixes) {
      if (f.fixedBuild === null || f.su !== b.su || cuKeyOf(parseBuildNumber(f.fixedBuild)) !== key) continue;
      if (compareBuilds(parseBuildNumber(b.build), parseBuildNumber(f.fixedBuild)) >= 0) continue;
      assert.equal(verdict(b.build, f.cve), I, `${f.cve} @ ${b.build} (listed uncertain as ${b.su})`);
      checked++;
    }
  }
  assert.ok(checked > 10, `checked ${checked}`);
});

test('property: every confirmed fixing build is fixed, and the listed build just below it is not', () => {
  let checked = 0;
  for (const f of kb.fixes) {
    if (f.status !== 'confirmed' || f.fixedBuild === null) continue;
    const info = kb.cves.find((c) => c.id === f.cve);
    const optIn = info?.configDependent?.startsWith('opt-in:') === true;
    const fixed = parseBuildNumber(f.fixedBuild);
    const key = cuKeyOf(fixed);
    assert.equal(verdict(f.fixedBuild, f.cve), optIn ? I : N, `${f.cve} @ fixing build ${f.fixedBuild}`);
    const below = kb.builds
      .filter((b) => !b.uncertain && cuKeyOf(parseBuildNumber(b.build)) === key && compareBuilds(parseBuildNumber(b.build), fixed) < 0)
      .sort((x, y) => compareBuilds(parseBuildNumber(y.build), parseBuildNumber(x.build)))[0];
    if (below !== undefined) {
      const got = verdict(below.build, f.cve);
      assert.notEqual(got, N, `${f.cve} @ ${below.build}, just below ${f.fixedBuild}`);
    }
    checked++;
  }
  assert.ok(checked > 500, `checked ${checked}`);
});

test('property: "derived rule" rows (first CU after the fix) agree with the later-CU rule', () => {
  let checked = 0;
  for (const f of kb.fixes) {
    if (f.status !== 'derived' || f.fixedBuild === null) continue;
    const got = verdict(f.fixedBuild, f.cve);
    assert.notEqual(got, V, `${f.cve} @ ${f.fixedBuild} (${f.edition} ${f.cu} and later)`);
    checked++;
  }
  assert.ok(checked > 100, `checked ${checked}`);
});

test('editions and CUs not listed for a CVE: assessed (not-vulnerable), unassessed or gaps (indeterminate), or never fixed', () => {
  // Exchange 2010 was out of support after 2020-10-13 but got Update Rollup 32 in March 2021 (ProxyLogon).
  assert.equal(verdict('14.3.513.0', 'CVE-2021-26855'), N, 'March 2021: 2010 was updated and not listed');
  assert.equal(verdict('14.3.513.0', 'CVE-2021-1730'), I, 'February 2021: 2010 out of support, no update');
  assert.equal(verdict('15.0.1497.48', 'CVE-2024-21410'), I, '2013 out of support since 2023-04-11');
  assert.equal(verdict('15.0.1497.48', 'CVE-2023-21529'), N, 'fixed by Feb23SU');
  const e2007 = kb.assess('8.3.517.0', 'exact');
  assert.equal(e2007.edition, 'Exchange Server 2007');
  assert.equal(e2007.cu, 'SP3 RU23');
  assert.equal(e2007.known, true);
  assert.equal(e2007.vulnerable.length, 0);
  // 2007 SP3 is listed by MS13-105, MS14-075, MS16-079 and MS16-108 (fixed in RU12, RU15, RU20, RU21): RU23 is past them.
  for (const cve of ['CVE-2013-5072', 'CVE-2014-6319', 'CVE-2016-0028', 'CVE-2016-0138']) assert.equal(verdict('8.3.517.0', cve), N, cve);
  assert.equal(verdict('8.3.327.1', 'CVE-2013-5072'), V, '2007 SP3 RU11, before the MS13-105 rollup');
  // Every CVE from 2018 on came after 2007's end of support (2017-04-11): never assessed for it.
  for (const v of e2007.verdicts) if (/^(?:CVE-20(?:1[89]|[2-9]\d)|ADV)/.test(v.cve)) assert.equal(v.verdict, I, `${v.cve}: ${v.reason}`);
  // A CU updated in the month of the fix but not listed: a gap, not a verdict.
  assert.equal(verdict('15.1.2176.4', 'CVE-2021-1730'), I, '2016 CU19 got Feb21SU but MSRC does not list it');
  assert.equal(verdict('15.2.922.27', 'CVE-2021-33766'), I, '2019 CU10 got Jul21SU but is not listed for ProxyToken');
  // A CU's one-off later update (March 2021 SU for long-unsupported CUs) does not make it "serviced".
  assert.equal(verdict('15.1.1415.10', 'CVE-2019-0686'), V, '2016 CU8 got nothing in February 2019');
});

test('ProxyToken on 2016 CU19 and 2019 CU8: listed as affected, no fix ever shipped for those CUs: vulnerable', () => {
  // Their last updates were the May 2021 SUs; ProxyToken was fixed in July 2021 (CU20/CU21, CU9/CU10 only).
  for (const build of ['15.1.2176.2', '15.1.2176.14', '15.2.792.3', '15.2.792.15']) {
    assert.equal(verdict(build, 'CVE-2021-33766'), V, build);
  }
  assert.equal(verdict('15.1.2176', 'CVE-2021-33766', 'cu'), V, '2016 CU19 at CU level: no build of it is fixed');
  assert.match(kb.assess('15.1.2176.14', 'exact').verdicts.find((v) => v.cve === 'CVE-2021-33766')?.reason ?? '', /never received a fix/);
});

test('property (whole table): a CU that never got a fix is vulnerable at every build and at CU level', () => {
  // Rebuilt from the raw rows, independently of verdict.ts: for each CVE and each CU of an edition the CVE
  // lists, if the CU has no fixing build (confirmed or uncertain), no configuration-only row, and nothing of
  // that CU shipped in or after the month of the edition's first fix, then no build of the CU was ever fixed.
  const byCu = new Map<string, { edition: string; builds: string[]; last: string; confirmed: boolean }>();
  for (const b of kb.builds) {
    const key = cuKeyOf(parseBuildNumber(b.build));
    const g = byCu.get(key) ?? { edition: b.edition, builds: [], last: '', confirmed: false };
    g.builds.push(b.build);
    if (b.releaseDate > g.last) g.last = b.releaseDate;
    if (!b.uncertain) g.confirmed = true;
    byCu.set(key, g);
  }
  const cuKeyOfRow = (f: (typeof kb.fixes)[number]): string | undefined =>
    f.fixedBuild !== null
      ? cuKeyOf(parseBuildNumber(f.fixedBuild))
      : [...byCu].find(([, g]) => g.edition === f.edition && kb.builds.some((b) => b.edition === f.edition && b.cu === f.cu && g.builds.includes(b.build)))?.[0];
  let checked = 0;
  for (const cve of kb.cves) {
    const rows = kb.fixes.filter((f) => f.cve === cve.id);
    const editions = new Set(rows.map((f) => f.edition));
    for (const edition of editions) {
      const dated = rows.filter((f) => f.edition === edition && f.fixDate !== null && f.status !== 'no-build-fix' && f.status !== 'derived');
      const fixMonth = dated.map((f) => (f.fixDate ?? '').slice(0, 7)).sort()[0];
      if (fixMonth === undefined) continue;
      for (const [key, g] of byCu) {
        if (g.edition !== edition || !g.confirmed || g.last.slice(0, 7) >= fixMonth) continue;
        const own = rows.filter((f) => cuKeyOfRow(f) === key && f.status !== 'derived');
        if (own.some((f) => f.fixedBuild !== null || f.status === 'no-build-fix')) continue;
        for (const build of g.builds) assert.equal(verdict(build, cve.id), V, `${cve.id} @ ${build}: its CU never got the fix (${fixMonth})`);
        assert.equal(verdict(key, cve.id, 'cu'), V, `${cve.id} @ ${key} (cu)`);
        checked++;
      }
    }
  }
  assert.ok(checked > 1000, `checked ${checked} CVE × CU pairs`);
});

test('an uncertain build row names its own SU and date, not those of the nearest confirmed build', () => {
  // CSS-Exchange names 15.1.1466.13 / 15.1.1415.8 the Mar21SU of 2016 CU9 / CU8; the nearest confirmed
  // builds are 2018 hotfixes (15.1.1466.10 KB4340731, 15.1.1415.7 May18SU), which they are not.
  for (const [build, cu] of [['15.1.1466.13', 'CU9'], ['15.1.1415.8', 'CU8']] as const) {
    const a = kb.assess(build, 'exact');
    assert.equal(a.cu, cu, build);
    assert.equal(a.su, 'Mar21SU', build);
    assert.equal(a.releaseDate, '2021-03', build);
    assert.equal(a.listedBuild, build, `${build} is listed (in an uncertain row)`);
    assert.ok(a.notes.some((n) => n.includes('uncertain')), build);
    // Verdicts stay cautious: the March 2021 CVEs are indeterminate, never not-vulnerable.
    assert.equal(a.verdicts.find((v) => v.cve === 'CVE-2021-26855')?.verdict, I, build);
  }
  // Another source's spelling of the same release stays revision drift to the confirmed row.
  const drift = kb.assess('15.2.858.2', 'exact');
  assert.equal(drift.listedBuild, '15.2.858.5');
  assert.equal(drift.su, null);
  assert.equal(drift.releaseDate, '2021-03-16');
  // Every uncertain row: what is shown is that row or the confirmed row of the same release, never another release.
  for (const row of kb.builds.filter((b) => b.uncertain)) {
    const a = kb.assess(row.build, 'exact');
    const shown = kb.builds.find((b) => b.build === a.listedBuild);
    assert.ok(shown !== undefined, row.build);
    assert.equal(shown.su, row.su, `${row.build} (${row.name}) shown as ${shown.name}`);
    assert.equal(shown.cu, row.cu, `${row.build} (${row.name}) shown as ${shown.name}`);
  }
});

test('CVEs of 2013-2018 added from MSRC and the bulletins: verdicts at their boundaries', () => {
  table(['CVE-2015-1628'], [
    ['15.0.1044.25', 'exact', V, '2013 CU7 before MS15-026 (KB3040856)'],
    ['15.0.1044.29', 'exact', N, '2013 CU7 + KB3040856'],
    ['15.0.1076.9', 'exact', N, '2013 CU8 came after the bulletin'],
    ['15.0.995.29', 'exact', V, '2013 CU6: never got MS15-026'],
  ]);
  table(['CVE-2016-0138'], [
    ['15.0.1178.4', 'exact', V, '2013 CU12 before KB3184736'],
    ['15.0.1178.9', 'exact', N, '2013 CU12 + KB3184736 (September 2016)'],
    ['14.3.301.0', 'exact', V, '2010 SP3 RU14, before RU15'],
    ['14.3.319.2', 'exact', N, '2010 SP3 RU15'],
  ]);
  // MSRC lists the editions as a whole and names no fixing build: CUs before are not settled by a build,
  // CUs after contain the fix (2016 CU12 and 2019 CU1, February 2019, for CVE-2018-8581).
  table(['CVE-2018-8581'], [
    ['15.1.1591.10', 'exact', I, '2016 CU11'],
    ['15.1.1713.5', 'exact', N, '2016 CU12'],
    ['15.2.221.12', 'exact', I, '2019 RTM'],
    ['15.2.330.5', 'exact', N, '2019 CU1'],
  ]);
  // Malware Protection Engine CVE (fixed outside Exchange builds): no build says vulnerable.
  assert.equal(verdict('15.1.669.32', 'CVE-2017-8535'), I);
  for (const id of ['CVE-2013-5072', 'CVE-2014-6319', 'CVE-2016-0028', 'CVE-2017-11761', 'CVE-2018-0986', 'CVE-2018-8581']) {
    assert.ok(kb.cves.some((c) => c.id === id), `${id} in cves.csv`);
  }
});
