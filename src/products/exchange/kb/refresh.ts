/**
 * Pure derivation of the in-repo tables from source tables (used by scripts/kb-refresh.ts).
 * Input "shared" format: the joined tables of ../shared/data/exchange/ (exchange-builds.csv with
 * product,name,release_date,build_short,build_long,source_repo,source_path; exchange-cve-fixes.csv with
 * cve,product,cu,first_fixed_build,source,su_name,notes). Extra source rows (e.g. from the righel JSON
 * dictionary or a saved Learn page) arrive already in that shape via the adapters in kb-sources.ts.
 */
import { compareBuilds, cuKeyOf, formatBuild, tryParseBuildNumber, type BuildNumber } from '../../../core/build-number.js';
import { editionByRule, fixStatusFromNotes, isEdition, parseReleaseName } from './normalise.js';
import type { BuildRecord, CveRecord, FixRecord } from './schema.js';

/** A source build row in the shared layout. */
export interface SourceBuild {
  readonly product: string;
  readonly name: string;
  readonly release_date: string;
  readonly build: string;
  readonly source_repo: string;
  readonly source_path: string;
}

/** A source fix row in the shared layout. */
export interface SourceFix {
  readonly cve: string;
  readonly product: string;
  readonly cu: string;
  readonly first_fixed_build: string;
  readonly source: string;
  readonly su_name: string;
  readonly notes: string;
}

export interface Derived<T> {
  readonly rows: readonly T[];
  readonly problems: readonly string[];
}

/** Builds: normalise build, split CU/SU from the name, move UNCERTAIN remarks and month-only dates into flags/notes. */
export function deriveBuilds(source: readonly SourceBuild[]): Derived<BuildRecord> {
  const rows: BuildRecord[] = [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const s of source) {
    const b = tryParseBuildNumber(s.build);
    if (b === null) {
      problems.push(`build row "${s.name}": unparseable build ${JSON.stringify(s.build)}`);
      continue;
    }
    const build = formatBuild(b);
    if (!isEdition(s.product)) {
      problems.push(`build ${build}: unknown product "${s.product}"`);
      continue;
    }
    const notes: string[] = [];
    let sourcePath = s.source_path;
    let uncertain = false;
    const unc = /\s*\((UNCERTAIN:[^)]*(?:\([^)]*\)[^)]*)*)\)/.exec(sourcePath);
    if (unc !== null) {
      uncertain = true;
      notes.push(unc[1] ?? 'UNCERTAIN');
      sourcePath = sourcePath.replace(unc[0], '');
    }
    // Learn prints 14.3.328.5 for "Update Rollup 5 for Exchange Server 2010 SP2": the build says SP3, the name SP2.
    const byRule = editionByRule(b);
    if (byRule !== s.product) {
      uncertain = true;
      notes.push(`edition by version rule is ${byRule ?? 'none'}, source says ${s.product}`);
    }
    const date = /^(\d{4}-\d{2}(?:-\d{2})?)(?:\s*\((.*)\))?$/.exec(s.release_date.trim());
    if (date === null) {
      problems.push(`build ${build}: release date ${JSON.stringify(s.release_date)} is not YYYY-MM[-DD]`);
      continue;
    }
    if (date[2] !== undefined) notes.push(`release date: ${date[2]}`);
    const parsed = parseReleaseName(s.product, s.name);
    if (parsed === null) {
      problems.push(`build ${build}: release name not understood: "${s.name}"`);
      continue;
    }
    const prior = seen.get(build);
    if (prior !== undefined) {
      problems.push(`build ${build} listed twice ("${prior}" and "${s.name}"); kept the first`);
      continue;
    }
    seen.set(build, s.name);
    rows.push({
      edition: s.product,
      name: s.name,
      cu: parsed.cu,
      su: parsed.su ?? '',
      release_date: date[1] ?? '',
      build,
      uncertain: uncertain ? 'true' : 'false',
      note: notes.join('; '),
      source_repo: s.source_repo,
      source_path: sourcePath.trim(),
    });
  }
  rows.sort(compareBuildRecords);
  return { rows, problems };
}

function compareBuildRecords(a: BuildRecord, b: BuildRecord): number {
  const x = tryParseBuildNumber(a.build);
  const y = tryParseBuildNumber(b.build);
  if (x === null || y === null) return a.build.localeCompare(b.build);
  return y.major - x.major || y.minor - x.minor || y.build - x.build || (y.revision ?? 0) - (x.revision ?? 0);
}

/**
 * Fix rows: normalise the build, set the status from the notes, and name the CU as the builds table
 * does (2010 rows say "SP3" or "SP3 UR30"; the table says "SP3 RU32"). "CUn and later CUs" rows keep
 * CUn and the status "derived".
 */
/**
 * A "CHECK" row says MSRC and HealthChecker name different SUs as the fix ("HealthChecker maps this CVE to
 * Nov24SUv2"). Both readings agree that builds at or above the LATER of the two are fixed, so that later
 * build becomes a confirmed row; the uncertain row stays for the builds in between.
 */
function confirmLaterReading(s: SourceFix, status: string, parsed: BuildNumber | null, builds: readonly BuildRecord[]): FixRecord | null {
  if (status !== 'uncertain' || parsed === null) return null;
  const m = /HealthChecker maps this CVE to (\S+) \(build table name ([^)]+)\) - CHECK/.exec(s.notes);
  if (m === null) return null;
  const key = cuKeyOf(parsed);
  const other = builds.find((r) => r.su === m[1] && r.edition === s.product && cuKeyOf(tryParseBuildNumber(r.build) ?? parsed) === key);
  const otherBuild = other === undefined ? null : tryParseBuildNumber(other.build);
  if (other === undefined || otherBuild === null) return null;
  const later = compareBuilds(otherBuild, parsed) > 0 ? other : builds.find((r) => r.build === formatBuild(parsed));
  if (later === undefined) return null;
  return {
    cve: s.cve.trim(),
    edition: s.product,
    cu: later.cu,
    fixed_build: later.build,
    su: later.su,
    fix_date: later.release_date,
    status: 'confirmed',
    note: `later of the MSRC (${formatBuild(parsed)}) and HealthChecker (${other.build}, ${m[1]}) readings: fixed under both`,
    source: s.source.trim(),
  };
}

/** MSRC release dates per CVE and CU key ("15.1.2176"), e.g. from righel's cves_affected_products_dict.json. */
export type MsrcDates = ReadonlyMap<string, ReadonlyMap<string, string>>;

export function deriveFixes(source: readonly SourceFix[], builds: readonly BuildRecord[], msrc: MsrcDates = new Map()): Derived<FixRecord> {
  const byBuild = new Map(builds.map((r) => [r.build, r]));
  const rows: FixRecord[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const s of source) {
    const raw = s.first_fixed_build.trim();
    const parsed = raw === '' ? null : tryParseBuildNumber(raw);
    if (raw !== '' && parsed === null) {
      problems.push(`${s.cve} ${s.product} ${s.cu}: unparseable build ${JSON.stringify(raw)}`);
      continue;
    }
    const fixedBuild = parsed === null ? '' : formatBuild(parsed);
    const status = fixStatusFromNotes(s.notes, fixedBuild);
    let cu = s.cu.replace(/ and later CUs$/, '').trim();
    const notes = s.notes.trim() === '' ? [] : [s.notes.trim()];
    if (/ and later CUs$/.test(s.cu)) notes.push('row stands for this CU and every later one');
    if (parsed !== null) {
      const row = byBuild.get(fixedBuild);
      if (row !== undefined) {
        if (row.cu !== cu) {
          if (s.product === 'Exchange Server 2010') notes.push(`source names the CU "${s.cu}"`);
          else problems.push(`${s.cve} ${s.product}: row says ${s.cu} but build ${fixedBuild} is ${row.cu}; used ${row.cu}`);
          cu = row.cu;
        }
      } else {
        const sameCu = builds.filter((r) => tryParseBuildNumber(r.build) !== null && cuKeyOf(tryParseBuildNumber(r.build) ?? parsed) === cuKeyOf(parsed));
        if (sameCu.length === 0) problems.push(`${s.cve} ${s.product} ${s.cu}: fixing build ${fixedBuild} is in no known CU`);
        else notes.push(`fixing build ${fixedBuild} is not itself in the builds table`);
      }
    }
    let fixDate = '';
    if (parsed !== null && status !== 'no-build-fix') {
      fixDate = byBuild.get(fixedBuild)?.release_date ?? '';
      if (fixDate.length === 7) {
        // Month-only build dates (pre-2021 SUs named after their month) cannot be ordered against a CU
        // released the same month; MSRC's release date for this CVE and CU pins the day.
        const perCve = msrc.get(s.cve);
        const exact = perCve?.get(cuKeyOf(parsed)) ?? [...(perCve?.values() ?? [])].find((d) => d.startsWith(fixDate));
        if (exact !== undefined && exact.startsWith(fixDate)) {
          fixDate = exact;
          notes.push('fix date from the MSRC release date (the build table gives only the month)');
        }
      }
    }
    const key = `${s.cve}|${s.product}|${cu}|${fixedBuild}`;
    if (seen.has(key)) {
      problems.push(`${s.cve} ${s.product} ${cu} ${fixedBuild}: duplicate row dropped`);
      continue;
    }
    seen.add(key);
    const extra = confirmLaterReading(s, status, parsed, builds);
    if (extra !== null) rows.push(extra);
    rows.push({
      cve: s.cve.trim(),
      edition: s.product,
      cu,
      fixed_build: fixedBuild,
      su: s.su_name.trim(),
      fix_date: fixDate,
      status,
      note: notes.join('; '),
      source: s.source.trim(),
    });
  }
  return { rows, problems };
}

/**
 * CVE rows: one per id in the fix table. Hand-curated columns (title, severity, group, config_dependent,
 * references) of an existing row are kept; new ids get an MSRC reference and empty curated columns.
 */
export function deriveCves(fixes: readonly FixRecord[], existing: readonly CveRecord[]): Derived<CveRecord> {
  const old = new Map(existing.map((r) => [r.id, r]));
  const ids = [...new Set(fixes.map((f) => f.cve))].sort(compareCveIds);
  const rows = ids.map((id): CveRecord => {
    const prior = old.get(id);
    if (prior !== undefined) return prior;
    return {
      id,
      title: '',
      severity: '',
      group: '',
      config_dependent: '',
      references: msrcUrl(id),
      source: 'id from cve-fixes.csv; curated columns not yet filled',
    };
  });
  const problems = existing.filter((r) => !ids.includes(r.id)).map((r) => `cves.csv row ${r.id} has no fix rows any more; dropped`);
  return { rows, problems };
}

/** Reads righel's cves_affected_products_dict.json shape: { CVE: { "15.1.2176": { releaseDate: ISO } } }. */
export function msrcDatesFromJson(json: unknown): MsrcDates {
  const out = new Map<string, Map<string, string>>();
  if (typeof json !== 'object' || json === null) return out;
  for (const [cve, perKey] of Object.entries(json)) {
    if (typeof perKey !== 'object' || perKey === null) continue;
    const m = new Map<string, string>();
    for (const [key, entry] of Object.entries(perKey as Record<string, unknown>)) {
      const d = typeof entry === 'object' && entry !== null ? (entry as { releaseDate?: unknown }).releaseDate : undefined;
      if (typeof d === 'string' && /^\d{4}-\d{2}-\d{2}/.test(d)) m.set(key, d.slice(0, 10));
    }
    out.set(cve, m);
  }
  return out;
}

export function msrcUrl(id: string): string {
  // MSRC serves CVEs and advisories (ADVyyxxxx) under the same path.
  return `https://msrc.microsoft.com/update-guide/vulnerability/${id}`;
}

/** Orders CVE-YYYY-N numerically, advisories after CVEs. */
export function compareCveIds(a: string, b: string): number {
  const pa = /^CVE-(\d{4})-(\d+)$/.exec(a);
  const pb = /^CVE-(\d{4})-(\d+)$/.exec(b);
  if (pa !== null && pb !== null) return Number(pa[1]) - Number(pb[1]) || Number(pa[2]) - Number(pb[2]);
  if (pa !== null) return -1;
  if (pb !== null) return 1;
  return a.localeCompare(b);
}

export interface TableDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

/** Row-level diff by key; `changed` lists keys whose other columns differ, with the columns named. */
export function diffTables<T extends Readonly<Record<string, string>>>(before: readonly T[], after: readonly T[], keyOf: (r: T) => string): TableDiff {
  const a = new Map(before.map((r) => [keyOf(r), r]));
  const b = new Map(after.map((r) => [keyOf(r), r]));
  const added = [...b.keys()].filter((k) => !a.has(k));
  const removed = [...a.keys()].filter((k) => !b.has(k));
  const changed: string[] = [];
  for (const [k, r] of b) {
    const o = a.get(k);
    if (o === undefined) continue;
    const cols = Object.keys(r).filter((c) => r[c] !== o[c]);
    if (cols.length > 0) changed.push(`${k} (${cols.join(', ')})`);
  }
  return { added, removed, changed };
}

export const buildKey = (r: BuildRecord): string => r.build;
export const fixKey = (r: FixRecord): string => `${r.cve} ${r.edition} ${r.cu} ${r.fixed_build || '(no build)'} ${r.status}`;
export const cveKey = (r: CveRecord): string => r.id;

/** One MSRC "affectedProduct" entry of a CVE: CU key ("15.1.2176"), product name as MSRC spells it, release date. */
export interface MsrcProduct {
  readonly key: string;
  readonly product: string;
  readonly date: string;
}
export type MsrcProducts = ReadonlyMap<string, readonly MsrcProduct[]>;

/** Reads righel's cves_affected_products_dict.json shape with product names: { CVE: { "15.1.2176": { product, releaseDate } } }. */
export function msrcProductsFromJson(json: unknown): MsrcProducts {
  const out = new Map<string, MsrcProduct[]>();
  if (typeof json !== 'object' || json === null) return out;
  for (const [cve, perKey] of Object.entries(json)) {
    const list: MsrcProduct[] = [];
    if (typeof perKey === 'object' && perKey !== null) {
      for (const [key, entry] of Object.entries(perKey as Record<string, unknown>)) {
        if (typeof entry !== 'object' || entry === null) continue;
        const e = entry as { product?: unknown; releaseDate?: unknown };
        if (typeof e.product !== 'string' || typeof e.releaseDate !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(e.releaseDate)) continue;
        list.push({ key, product: e.product, date: e.releaseDate.slice(0, 10) });
      }
    }
    out.set(cve, list);
  }
  return out;
}

/**
 * Fix rows for CVEs that MSRC's affected-product extract lists but no fix source covers (`covered`: the CVEs
 * that already have rows). Every CVE of the extract then appears in the tables, with what MSRC says and no more:
 *  - a product naming a CU or service pack ("... 2016 Cumulative Update 10", "... 2013 Service Pack 1"): the
 *    update of that CU released in the MSRC release month, on or after its day (2010/2007 service packs:
 *    the rollup of that SP released then). Exactly one such build: `confirmed`; several: the lowest,
 *    `uncertain`; none: an `uncertain` row without a build (the CU is listed, no fixing build is known), dated;
 *  - a product naming only the edition ("Microsoft Exchange Server 2016"): MSRC names no CU and no fixing
 *    build (e.g. Malware Protection Engine CVEs, fixed outside Exchange builds; CVE-2018-8581, an advisory
 *    fixed by later CUs): a dated `no-build-fix` row for every CU of the edition released before that date.
 *    Those CUs are indeterminate; CUs released after the date are not vulnerable (the date orders them).
 * CVEs whose extract lists no product at all get no row here (they need another source, e.g.
 * sources/tenable-bulletin-cve-fixes.csv); their ids are returned in `problems`.
 */
export function deriveMsrcOnlyFixes(msrc: MsrcProducts, builds: readonly BuildRecord[], covered: ReadonlySet<string>): Derived<FixRecord> {
  const rows: FixRecord[] = [];
  const problems: string[] = [];
  const source = 'MSRC affectedProduct (msrc/righel-cves_affected_products_dict.json; CVE absent from the shared fix table) + builds.csv';
  /** Builds grouped by CU key, ascending. */
  const groups = new Map<string, Array<{ r: BuildRecord; b: BuildNumber }>>();
  for (const r of builds) {
    const b = tryParseBuildNumber(r.build);
    if (b === null || r.uncertain === 'true') continue;
    const list = groups.get(cuKeyOf(b)) ?? [];
    list.push({ r, b });
    groups.set(cuKeyOf(b), list);
  }
  for (const list of groups.values()) list.sort((x, y) => compareBuilds(x.b, y.b));
  const cuRelease = (list: ReadonlyArray<{ r: BuildRecord }>): string => list.map((x) => x.r.release_date).sort()[0] ?? '';
  const ids = [...msrc.keys()].filter((id) => !covered.has(id)).sort(compareCveIds);
  for (const cve of ids) {
    const entries = msrc.get(cve) ?? [];
    if (entries.length === 0) {
      problems.push(`${cve}: MSRC lists no affected product and no fix source has rows for it; not in the tables`);
      continue;
    }
    const seen = new Set<string>();
    const push = (r: FixRecord): void => {
      const k = `${r.edition}|${r.cu}|${r.fixed_build}`;
      if (seen.has(k)) return;
      seen.add(k);
      rows.push(r);
    };
    for (const e of entries) {
      const keyBuild = tryParseBuildNumber(`${e.key}.0`);
      const edition = keyBuild === null ? null : editionByRule(keyBuild);
      if (keyBuild === null || edition === null) {
        problems.push(`${cve}: MSRC product "${e.product}" (${e.key}) is not an on-premises Exchange CU`);
        continue;
      }
      const month = e.date.slice(0, 7);
      const specific = /Cumulative Update|Service Pack|Update Rollup/i.test(e.product);
      if (!specific) {
        for (const [, list] of groups) {
          const first = list[0];
          if (first === undefined || first.r.edition !== edition || first.r.cu === 'Preview') continue;
          if (cuRelease(list) >= e.date) continue;
          push({
            cve, edition, cu: first.r.cu, fixed_build: '', su: '', fix_date: e.date, status: 'no-build-fix',
            note: `MSRC lists "${e.product}" as a whole (${e.date}), no CU and no fixing build: a build does not settle it`,
            source,
          });
        }
        continue;
      }
      // 2010/2007 "Service Pack N": MSRC's key is the SP's own build; the fix is a rollup of that SP.
      const sp = /^(?:8|14)$/.test(String(keyBuild.major)) ? /Service Pack (\d)/.exec(e.product)?.[1] : undefined;
      const candidates: Array<{ r: BuildRecord; b: BuildNumber }> = [];
      let cuName: string | undefined;
      for (const [key, list] of groups) {
        const first = list[0];
        if (first === undefined || first.r.edition !== edition) continue;
        const inScope = sp !== undefined ? first.r.cu === `SP${sp}` || first.r.cu.startsWith(`SP${sp} RU`) : key === e.key;
        if (!inScope) continue;
        if (key === e.key) cuName = first.r.cu;
        for (const x of list) {
          const d = x.r.release_date;
          if (d.slice(0, 7) !== month || (d.length === 10 && d < e.date)) continue;
          // A CU or rollup's own first build counts only for 2010/2007 rollups (they are the updates).
          if (sp === undefined && x === first && x.r.su === '') continue;
          candidates.push(x);
        }
      }
      candidates.sort((x, y) => compareBuilds(x.b, y.b));
      const fix = candidates[0];
      if (fix === undefined) {
        if (cuName === undefined) {
          problems.push(`${cve}: MSRC product "${e.product}" (${e.key}) is in no CU of builds.csv`);
          continue;
        }
        push({
          cve, edition, cu: cuName, fixed_build: '', su: '', fix_date: e.date, status: 'uncertain',
          note: `UNCERTAIN: MSRC lists ${e.product} (${e.date}); no build of it released that month in builds.csv`,
          source,
        });
        continue;
      }
      push({
        cve, edition, cu: fix.r.cu, fixed_build: fix.r.build, su: fix.r.su, fix_date: e.date,
        status: candidates.length === 1 ? 'confirmed' : 'uncertain',
        note:
          (candidates.length === 1 ? '' : `UNCERTAIN: ${candidates.length} builds of it released that month (${candidates.map((c) => c.r.build).join(', ')}); the lowest is taken; `) +
          `fixing build = the update released in the MSRC release month (${e.date})`,
        source,
      });
    }
  }
  return { rows, problems };
}
