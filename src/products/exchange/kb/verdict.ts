/**
 * Verdict logic (GUIDE §5): turns the tables into per-CVE verdicts for a build. Pure; indexes are built
 * once in createKb() and every assessment is memoised, because a scan asks about the same few hundred
 * builds for thousands of hosts.
 *
 * Rules, per CVE and build (b in CU C of edition E):
 *  1. The build is not in any listed CU (or is Exchange Online 15.20.x): indeterminate, known=false.
 *  2. E has no fix row for the CVE: not-vulnerable ("not listed as affected") when E was in support when
 *     the CVE was fixed, or got an update that month; indeterminate otherwise (Microsoft did not assess
 *     it). SE with only 2019 rows: not-vulnerable if SE's CU came after the 2019 fix, else indeterminate.
 *  3. C has a fix row: at or above the first confirmed fixing build → not-vulnerable; at or above only an
 *     uncertain fixing build → indeterminate; below → vulnerable; "no build fix" rows (fixed only by
 *     configuration, or no fixing build known) → indeterminate. With precision 'cu' → indeterminate,
 *     unless the CU's own first build is already at or above the fix.
 *  4. C has no fix row: C released after the CVE's first fix in E → not-vulnerable (CUs include earlier
 *     SU fixes); C released before and not updated the month the fix shipped → vulnerable (the CU never
 *     got the fix: out of support by then); C updated that month yet not listed → indeterminate (not
 *     affected, or a gap in the sources). Month-only dates in the fix's month cannot be ordered →
 *     indeterminate.
 *  Uncertain rows never make a not-vulnerable: a build matched to an uncertain row that claims the fixing
 *  SU is indeterminate; a CU known only from uncertain rows is indeterminate throughout.
 *  Revision drift (2019 CU9 reports 15.2.858.2, listed 15.2.858.5): the build maps to the nearest listed
 *  build of its CU (ties to the lower); if that mapping crosses a fix threshold upwards → indeterminate.
 *  Configuration-dependent CVEs (cves.csv config_dependent) say so in every reason. Below the fix they are
 *  indeterminate where the CU has a "no build fix" row (a configuration can protect it) and vulnerable
 *  where the CU never received anything (out of support: configuration is no excuse). At or above the fix
 *  they are not-vulnerable for "default-on" fixes (e.g. Extended Protection from 2019 CU14, with the
 *  caveat in the reason) and indeterminate for "opt-in" fixes (the update alone does not protect).
 */
import { compareBuilds, cuKeyOf, formatBuild, parseBuildNumber, type BuildNumber } from '../../../core/build-number.js';
import { editionByRule, END_OF_SUPPORT, isExchangeOnline, type Edition } from './normalise.js';
import type { KbTables } from './load.js';
import type { BuildAssessment, BuildPrecision, CveInfo, CveVerdict, ExchangeBuildRow, ExchangeFixRow, ExchangeKb, Verdict } from './types.js';

interface ListedBuild {
  readonly row: ExchangeBuildRow;
  readonly b: BuildNumber;
}

/** One CU (or 2010/2007 rollup): every listed build sharing major.minor.build. */
interface CuGroup {
  readonly key: string;
  readonly edition: string;
  /** All rows, ascending by revision. */
  readonly all: readonly ListedBuild[];
  /** Rows not marked uncertain, ascending. */
  readonly confirmed: readonly ListedBuild[];
  /** Earliest release date of a confirmed row (the CU's own release), or null when only uncertain rows exist. */
  readonly releaseDate: string | null;
  /** Latest release date of a confirmed row: the CU's last update (its support ended around then). */
  readonly lastUpdate: string | null;
  /** Latest release date of any row, uncertain ones included: nothing of this CU shipped after it. */
  readonly lastRelease: string | null;
  /** Months (YYYY-MM) in which a confirmed build of this CU was released. */
  readonly updateMonths: ReadonlySet<string>;
}

/** Fix facts for one CVE in one CU. */
interface CuFix {
  confirmed: ListedFix | null;
  uncertain: ListedFix | null;
  noBuild: ExchangeFixRow | null;
}
interface ListedFix {
  readonly row: ExchangeFixRow;
  readonly b: BuildNumber;
}

interface CveIndex {
  readonly info: CveInfo;
  readonly byKey: ReadonlyMap<string, CuFix>;
  /** Editions that have any row (derived rows included). */
  readonly editions: ReadonlySet<string>;
  /** Earliest release date of a fixing build, per edition and overall (confirmed or uncertain rows). */
  readonly fixDateByEdition: ReadonlyMap<string, string>;
  readonly fixDate: string | null;
}

/**
 * Assessments memoised per input string. Scanned build strings are hostile (any revision is well-formed), so
 * the memo is bounded, and the verdict lists, the bulky part, are shared between inputs that get the same
 * verdicts (every revision that maps to the same listed build), which bounds them by the table size.
 */
const MEMO_LIMIT = 20_000;

export function createKb(tables: KbTables): ExchangeKb {
  const groups = indexGroups(tables.builds);
  const editionMonths = new Map<string, Set<string>>();
  for (const r of tables.builds) {
    if (r.uncertain) continue;
    const months = editionMonths.get(r.edition) ?? new Set<string>();
    months.add(r.releaseDate.slice(0, 7));
    editionMonths.set(r.edition, months);
  }
  const fixesByCve = new Map<string, ExchangeFixRow[]>();
  for (const f of tables.fixes) {
    const list = fixesByCve.get(f.cve) ?? [];
    list.push(f);
    fixesByCve.set(f.cve, list);
  }
  const cves = tables.cves.map((info) => indexCve(info, fixesByCve.get(info.id) ?? [], groups));
  const memo = new Map<string, BuildAssessment>();
  const shared = new Map<string, readonly CveVerdict[]>();
  /** Verdict lists are a pure function of `key`: compute once, freeze, reuse. */
  function sharedVerdicts(key: string, make: () => CveVerdict[]): readonly CveVerdict[] {
    let v = shared.get(key);
    if (v === undefined) {
      const list = make();
      for (const x of list) Object.freeze(x);
      v = Object.freeze(list);
      shared.set(key, v);
    }
    return v;
  }

  function editionOf(build: string): string | null {
    const b = parseBuildNumber(build);
    if (isExchangeOnline(b)) return null;
    return groups.get(cuKeyOf(b))?.edition ?? editionByRule(b);
  }

  function assess(build: string, precision: BuildPrecision): BuildAssessment {
    const memoKey = `${precision}|${build}`;
    const hit = memo.get(memoKey);
    if (hit !== undefined) return hit;
    const result = assessUncached(parseBuildNumber(build), precision);
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(memoKey, result);
    return result;
  }

  function assessUncached(parsed: BuildNumber, requested: BuildPrecision): BuildAssessment {
    const notes: string[] = [];
    let precision = requested;
    if (precision === 'exact' && parsed.revision === null) {
      precision = 'cu';
      notes.push('no revision given: assessed at CU level');
    }
    const input = precision === 'cu' ? cuKeyOf(parsed) : formatBuild(parsed);
    const group = isExchangeOnline(parsed) ? undefined : groups.get(cuKeyOf(parsed));
    if (group === undefined) {
      const edition = isExchangeOnline(parsed) ? null : editionByRule(parsed);
      const why = isExchangeOnline(parsed)
        ? 'Exchange Online (15.20.x) is Microsoft 365, not an on-premises server'
        : edition === null
          ? 'not an Exchange Server version'
          : `${edition} build in no listed CU (the tables may be out of date)`;
      notes.push(why);
      const verdicts = sharedVerdicts(`unknown|${why}`, () => cves.map((c): CveVerdict => ({ cve: c.info.id, verdict: 'indeterminate', reason: `unknown build: ${why}` })));
      return finish({ input, precision, known: false, edition, cu: null, su: null, releaseDate: null, listedBuild: null, notes, verdicts });
    }

    const match = precision === 'exact' ? matchRevision(group, parsed, notes) : { listed: cuLevelRow(group), claimed: null };
    const uncertainOnly = group.confirmed.length === 0;
    if (uncertainOnly) notes.push(`every listed build of this CU is marked uncertain: ${match.listed.row.note}`);

    const cuName = `${group.edition.replace('Exchange Server ', '')} ${match.listed.row.cu}`;
    const ctx: BuildContext = { parsed, match: match.listed, claimed: match.claimed, group, precision, uncertainOnly, cuName };
    // Verdicts depend on the listed build matched, an uncertain row claimed, and (only when the input lies
    // below the listed build it maps to) the input itself; the key says exactly that.
    const below = precision === 'exact' && compareBuilds(parsed, match.listed.b) < 0 ? formatBuild(parsed) : '';
    const key = `${precision}|${precision === 'cu' ? group.key : match.listed.row.build}|${match.claimed?.build ?? ''}|${below}`;
    const verdicts = sharedVerdicts(key, () => cves.map((c) => verdictFor(c, ctx)));
    // What the build IS: the row that lists it, even an uncertain one (15.1.1466.13 is CSS-Exchange's
    // Mar21SU for 2016 CU9, not the 2018 hotfix that happens to be the nearest confirmed build). Only the
    // verdicts lean on the nearest confirmed build; the record names the build's own SU and date. An
    // uncertain row naming the same release as the confirmed one (15.2.858.2, another source's spelling of
    // 2019 CU9 = 15.2.858.5) is revision drift: the confirmed row is shown.
    const claimed = match.claimed !== null && (match.claimed.su !== match.listed.row.su || match.claimed.cu !== match.listed.row.cu) ? match.claimed : null;
    const shown = claimed ?? match.listed.row;
    if (claimed !== null) notes.push(`SU and release date as that uncertain row names them (${claimed.su ?? 'no SU'}, ${claimed.releaseDate}); verdicts use ${match.listed.row.build}`);
    return finish({
      input,
      precision,
      known: true,
      edition: group.edition,
      cu: shown.cu,
      su: precision === 'cu' ? null : shown.su,
      releaseDate: precision === 'cu' ? group.releaseDate ?? match.listed.row.releaseDate : shown.releaseDate,
      listedBuild: precision === 'cu' ? null : shown.build,
      notes,
      verdicts,
    });
  }

  interface BuildContext {
    readonly parsed: BuildNumber;
    /** The listed build the verdict is based on (confirmed where the CU has confirmed rows). */
    readonly match: ListedBuild;
    /** An uncertain row matching the input exactly, whose SU name may claim a fix. */
    readonly claimed: ExchangeBuildRow | null;
    readonly group: CuGroup;
    readonly precision: BuildPrecision;
    readonly uncertainOnly: boolean;
    /** "2016 CU19": how reasons name the CU. */
    readonly cuName: string;
  }

  function verdictFor(c: CveIndex, x: BuildContext): CveVerdict {
    const v = decide(c, x);
    const config = parseConfigDependent(c.info.configDependent);
    if (config === null || v.notListed === true) return { cve: c.info.id, verdict: v.verdict, reason: v.reason };
    if (v.verdict === 'not-vulnerable') {
      // opt-in: the fixing build alone does not protect; default-on: it does unless someone turned it off.
      if (config.optIn) return { cve: c.info.id, verdict: 'indeterminate', reason: `${v.reason}, but the fix also needs configuration: ${config.text}` };
      return { cve: c.info.id, verdict: v.verdict, reason: `${v.reason} (configuration can undo this: ${config.text})` };
    }
    return { cve: c.info.id, verdict: v.verdict, reason: `${v.reason}; configuration-dependent: ${config.text}` };
  }

  function decide(c: CveIndex, x: BuildContext): Decision {
    const { group } = x;
    const E = group.edition;
    const cuName = x.cuName;
    if (x.uncertainOnly) return ind(`${cuName} is listed only in rows marked uncertain`);

    if (!c.editions.has(E)) {
      if (E === 'Exchange Server SE' && c.editions.has('Exchange Server 2019')) {
        // SE is the 2019 code base: an SE release after the 2019 fix contains it (configuration caveats still apply).
        const fix2019 = c.fixDateByEdition.get('Exchange Server 2019') ?? c.fixDate;
        const order = compareDates(group.releaseDate, fix2019);
        if (order === 'after') return nv(`SE not listed as affected; ${cuName} (${group.releaseDate}) came after the 2019 fix (${fix2019})`);
        return ind('Exchange Server 2019 is affected and SE is not listed: not assessed');
      }
      if (c.fixDate === null) return ind(`${E} not listed, and no fixing build with a release date is known`);
      // Microsoft lists only editions it still services. After the end of support an edition counts as
      // assessed only in a month it still got an update (Exchange 2010 RU32 in March 2021, 2016 in 2026).
      const eos = END_OF_SUPPORT[E as Edition] ?? null;
      const inSupport = eos === null || compareDates(c.fixDate, eos) === 'before';
      const updatedThatMonth = editionMonths.get(E)?.has(c.fixDate.slice(0, 7)) === true;
      if (!inSupport && !updatedThatMonth) {
        return ind(`${E} is not listed, but it was out of support (since ${eos}) and got no update when the fix shipped (${c.fixDate}): Microsoft did not assess it`);
      }
      return { ...nv(`${E} is not listed as affected (it was still serviced when the fix shipped, ${c.fixDate})`), notListed: true };
    }

    const fix = c.byKey.get(group.key);
    if (fix !== undefined) return decideListedCu(fix, x, cuName, c.fixDateByEdition.get(E) ?? c.fixDate);

    const fixDate = c.fixDateByEdition.get(E) ?? c.fixDate;
    const order = compareDates(group.releaseDate, fixDate);
    if (order === 'after') return nv(`${cuName} (${group.releaseDate}) was released after the fix (${fixDate}); CUs include earlier security fixes`);
    if (order === 'before' && fixDate !== null) {
      // Updated in the month the fix shipped, yet not listed: not affected, or a gap in the sources. (Later
      // one-off updates, such as the March 2021 SU for long-unsupported CUs, do not count: they carried
      // only their own fixes.)
      if (group.updateMonths.has(fixDate.slice(0, 7))) {
        return ind(`${cuName} got an update the month the fix shipped (${fixDate.slice(0, 7)}) but is not listed for it: not affected, or missing from the sources`);
      }
      return vuln(`${cuName} never received a fix (it got no update when the fix shipped, ${fixDate}; last update ${group.lastUpdate})`);
    }
    return ind(`cannot order ${cuName} (${group.releaseDate ?? 'no date'}) against the fix (${fixDate ?? 'no date'})`);
  }

  function decideListedCu(fix: CuFix, x: BuildContext, cuName: string, fixDate: string | null): Decision {
    const configurable = fix.noBuild !== null;
    // Listed as affected, no fixing build known for this CU, and nothing of this CU (not even an uncertain
    // row) shipped in or after the month the fix shipped: the CU never got the fix (2016 CU19 and 2019 CU8
    // for ProxyToken, whose last updates came in May 2021, two months before the July 2021 fix). Only a
    // "no-build-fix" row (configuration protects it) keeps such a CU indeterminate.
    if (fix.confirmed === null && fix.uncertain === null && fix.noBuild !== null && fix.noBuild.status !== 'no-build-fix') {
      const last = x.group.lastRelease;
      if (fixDate !== null && last !== null && last.slice(0, 7) < fixDate.slice(0, 7)) {
        return vuln(`${cuName} is listed as affected and never received a fix (its last update, ${last}, came before the fix shipped, ${fixDate})`);
      }
    }
    if (x.precision === 'cu') {
      const first = x.group.confirmed[0];
      if (fix.confirmed !== null && first !== undefined && compareBuilds(first.b, fix.confirmed.b) >= 0) {
        return nv(`every build of ${cuName} is at or above the fixing build ${fix.confirmed.row.fixedBuild}`);
      }
      if (fix.confirmed !== null || fix.uncertain !== null) {
        const f = (fix.confirmed ?? fix.uncertain) as ListedFix;
        return ind(`only the CU is visible; ${f.row.su ?? 'a security update'} (${f.row.fixedBuild}) for ${cuName} fixes it`);
      }
      return ind(`${cuName}: ${fix.noBuild?.note || 'no fixing build known'}`);
    }
    const effective = x.match.b;
    if (fix.confirmed !== null && compareBuilds(effective, fix.confirmed.b) >= 0) {
      if (compareBuilds(x.parsed, fix.confirmed.b) < 0) {
        return ind(`reported ${formatBuild(x.parsed)} is below the fixing build ${fix.confirmed.row.fixedBuild} but maps to the listed ${x.match.row.build}`);
      }
      return nv(`at or above the fixing build ${fix.confirmed.row.fixedBuild}${suLabel(fix.confirmed.row)} of ${cuName}`);
    }
    if (fix.uncertain !== null && compareBuilds(effective, fix.uncertain.b) >= 0) {
      return ind(`at or above ${fix.uncertain.row.fixedBuild}, but that fix row is uncertain: ${fix.uncertain.row.note}`);
    }
    if (configurable) return ind(`${cuName}: ${fix.noBuild?.note || 'no fixing build known'}`);
    const f = fix.confirmed ?? fix.uncertain;
    if (f === null) return ind(`${cuName} is affected and no fixing build is known`);
    // An uncertain build row that claims to be the fixing SU (CSS-Exchange's Mar21SU builds for 2016 CU8/CU9).
    if (x.claimed !== null && x.claimed.su !== null && x.claimed.su === f.row.su) {
      return ind(`below the fixing build ${f.row.fixedBuild}, but ${x.claimed.build} is listed (uncertain) as ${x.claimed.su}`);
    }
    return vuln(`below the fixing build ${f.row.fixedBuild}${suLabel(f.row)} of ${cuName}`);
  }

  return Object.freeze({
    version: tables.version, builds: tables.builds, fixes: tables.fixes, cves: tables.cves,
    ...(tables.groups === undefined ? {} : { groups: tables.groups }),
    assess, editionOf,
  });
}

/** A verdict before configuration caveats; `notListed` marks "edition not affected", where configuration is moot. */
interface Decision {
  readonly verdict: Verdict;
  readonly reason: string;
  readonly notListed?: boolean;
}

/** cves.csv config_dependent: "default-on: ..." (the fixing build protects unless reconfigured) or "opt-in: ..." (it needs configuring). */
export function parseConfigDependent(text: string | null): { optIn: boolean; text: string } | null {
  if (text === null || text === '') return null;
  const m = /^(default-on|opt-in):\s*(.*)$/s.exec(text);
  return m === null ? { optIn: true, text } : { optIn: m[1] === 'opt-in', text: m[2] ?? '' };
}

function nv(reason: string): Decision {
  return { verdict: 'not-vulnerable', reason };
}
function vuln(reason: string): Decision {
  return { verdict: 'vulnerable', reason };
}
function ind(reason: string): Decision {
  return { verdict: 'indeterminate', reason };
}

function suLabel(f: ExchangeFixRow): string {
  return f.su === null ? '' : ` (${f.su})`;
}

/** Completes and freezes an assessment: it is memoised and shared between callers, so nobody may change it. */
function finish(a: Omit<BuildAssessment, 'vulnerable' | 'indeterminate'>): BuildAssessment {
  return Object.freeze({
    ...a,
    notes: Object.freeze([...a.notes]),
    vulnerable: Object.freeze(a.verdicts.filter((v) => v.verdict === 'vulnerable').map((v) => v.cve)),
    indeterminate: Object.freeze(a.verdicts.filter((v) => v.verdict === 'indeterminate').map((v) => v.cve)),
  });
}

function indexGroups(rows: readonly ExchangeBuildRow[]): Map<string, CuGroup> {
  const tmp = new Map<string, ListedBuild[]>();
  for (const row of rows) {
    const b = parseBuildNumber(row.build);
    const key = cuKeyOf(b);
    const list = tmp.get(key) ?? [];
    list.push({ row, b });
    tmp.set(key, list);
  }
  const out = new Map<string, CuGroup>();
  for (const [key, list] of tmp) {
    list.sort((p, q) => compareBuilds(p.b, q.b));
    const confirmed = list.filter((l) => !l.row.uncertain);
    const dates = confirmed.map((l) => l.row.releaseDate).sort();
    const anyDates = list.map((l) => l.row.releaseDate).sort();
    out.set(key, {
      key,
      edition: list[0]?.row.edition ?? '',
      all: list,
      confirmed,
      releaseDate: dates[0] ?? null,
      lastUpdate: dates[dates.length - 1] ?? null,
      lastRelease: anyDates[anyDates.length - 1] ?? null,
      updateMonths: new Set(dates.map((d) => d.slice(0, 7))),
    });
  }
  return out;
}

function indexCve(info: CveInfo, fixes: readonly ExchangeFixRow[], groups: ReadonlyMap<string, CuGroup>): CveIndex {
  const byKey = new Map<string, CuFix>();
  const editions = new Set<string>();
  const fixDateByEdition = new Map<string, string>();
  let fixDate: string | null = null;
  for (const f of fixes) {
    editions.add(f.edition);
    if (f.status === 'derived') continue; // restates rule 4; kept for provenance and checked by tests
    let key: string | undefined;
    let fb: BuildNumber | null = null;
    if (f.fixedBuild !== null) {
      fb = parseBuildNumber(f.fixedBuild);
      key = cuKeyOf(fb);
    } else {
      key = [...groups.values()].find((g) => g.edition === f.edition && g.all.some((l) => l.row.cu === f.cu))?.key;
    }
    if (key === undefined) continue;
    const entry = byKey.get(key) ?? { confirmed: null, uncertain: null, noBuild: null };
    if (fb === null || f.status === 'no-build-fix') entry.noBuild ??= f;
    else if (f.status === 'confirmed') {
      if (entry.confirmed === null || compareBuilds(fb, entry.confirmed.b) < 0) entry.confirmed = { row: f, b: fb };
    } else if (entry.uncertain === null || compareBuilds(fb, entry.uncertain.b) < 0) entry.uncertain = { row: f, b: fb };
    byKey.set(key, entry);
    // A dated "no-build-fix" row (MSRC lists the edition as a whole, no fixing build) still dates the fix:
    // CUs released after it are fixed (rule 4). Undated ones (Extended Protection rows) say nothing about time.
    const date = f.fixDate;
    if (date !== null) {
      const prior = fixDateByEdition.get(f.edition);
      if (prior === undefined || date < prior) fixDateByEdition.set(f.edition, date);
      if (fixDate === null || date < fixDate) fixDate = date;
    }
  }
  return { info, byKey, editions, fixDateByEdition, fixDate };
}

/**
 * Exact build match, else the nearest confirmed build of the CU (ties to the lower), noting the drift.
 * An exact match to an uncertain row (e.g. 15.2.858.2, which one source lists for 2019 CU9 and Learn does
 * not) is reported as `claimed` and the verdict uses the nearest confirmed build instead.
 */
function matchRevision(group: CuGroup, b: BuildNumber, notes: string[]): { listed: ListedBuild; claimed: ExchangeBuildRow | null } {
  const exact = group.all.find((l) => l.b.revision === b.revision);
  if (exact !== undefined && (!exact.row.uncertain || group.confirmed.length === 0)) return { listed: exact, claimed: null };
  const pool = group.confirmed.length > 0 ? group.confirmed : group.all;
  let best = pool[0] as ListedBuild;
  for (const l of pool) {
    const d = Math.abs((l.b.revision ?? 0) - (b.revision ?? 0));
    const bd = Math.abs((best.b.revision ?? 0) - (b.revision ?? 0));
    if (d < bd) best = l;
  }
  const last = pool[pool.length - 1] as ListedBuild;
  const input = formatBuild(b);
  if (exact !== undefined) {
    notes.push(`${input} is listed only in a row marked uncertain ("${exact.row.name}": ${exact.row.note}); matched to the nearest confirmed build of ${best.row.cu}, ${best.row.build}`);
  } else if ((b.revision ?? 0) > (last.b.revision ?? 0)) {
    notes.push(`${input} is newer than any listed build of ${best.row.cu}; matched to the newest listed, ${best.row.build} (the tables may be out of date)`);
  } else {
    notes.push(`${input} is not listed; matched to the nearest listed build of ${best.row.cu}, ${best.row.build} (web components may report a revision a little off the listed build)`);
  }
  return { listed: best, claimed: exact?.row ?? null };
}

/** For a CU-level build: the CU's own release row (the first confirmed build without an SU), else its first row. */
function cuLevelRow(group: CuGroup): ListedBuild {
  return group.confirmed.find((l) => l.row.su === null) ?? group.confirmed[0] ?? (group.all[0] as ListedBuild);
}

/**
 * Orders two dates that may be month-only (YYYY-MM). 'same' when they cannot be told apart
 * (equal, or one is month-only within the other's month); 'unknown' when either is missing.
 */
export function compareDates(a: string | null, b: string | null): 'before' | 'after' | 'same' | 'unknown' {
  if (a === null || b === null) return 'unknown';
  const n = Math.min(a.length, b.length);
  const x = a.slice(0, n);
  const y = b.slice(0, n);
  if (x < y) return 'before';
  if (x > y) return 'after';
  return 'same';
}

