/**
 * Reads and validates the in-repo tables (data/exchange/*.csv). Validation is strict: a row that does not
 * parse, a duplicate build, or a fix row for a CU the builds table does not know makes the whole load fail
 * with TOCSIN_KB_DATA_INVALID listing every problem, because a silently skipped row would turn into a
 * wrong verdict.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cuKeyOf, formatBuild, tryParseBuildNumber } from '../../../core/build-number.js';
import { TocsinError } from '../../../core/errors.js';
import { dataPath } from '../../../platform/paths.js';
import { parseCsvRecords } from '../../../core/csv.js';
import { editionByRule, FIX_STATUSES, isEdition, type FixStatus } from './normalise.js';
import {
  BUILD_COLUMNS,
  BUILD_FILE,
  CVE_COLUMNS,
  CVE_FILE,
  FIX_COLUMNS,
  FIX_FILE,
  SEVERITIES,
  type BuildRecord,
  type CveRecord,
  type FixRecord,
} from './schema.js';
import type { CveInfo, ExchangeBuildRow, ExchangeFixRow } from './types.js';
import type { CveGroups } from '../../sdk.js';
import { readGroupRecords, toCveGroups, validateGroups } from './groups.js';
import { GROUP_FILE } from './schema.js';

export interface KbTables {
  /** Content hash of the three files (12 hex digits); "unversioned" for tables built in memory. */
  readonly version: string;
  readonly builds: readonly ExchangeBuildRow[];
  readonly fixes: readonly ExchangeFixRow[];
  readonly cves: readonly CveInfo[];
  /** cve-groups.csv (headline groups first); absent for tables built in memory without one. */
  readonly groups?: CveGroups;
}

const CVE_ID = /^(?:CVE-\d{4}-\d{4,7}|ADV\d{6})$/;
const DATE = /^\d{4}-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?$/;

/** Reads the CSV files from `dir` (default: the package's data/exchange) and validates them. */
export function loadTables(dir: string = dataPath('exchange')): KbTables {
  const problems: string[] = [];
  const hash = createHash('sha256');
  const read = (file: string, cols: readonly string[]): Record<string, string>[] => {
    let text: string;
    try {
      text = readFileSync(`${dir}/${file}`, 'utf8');
      hash.update(text);
    } catch (e) {
      problems.push(`${file}: cannot read (${(e as Error).message})`);
      return [];
    }
    const parsed = parseCsvRecords(text, cols);
    problems.push(...parsed.problems.map((p) => `${file}: ${p}`));
    return parsed.records;
  };
  const builds = read(BUILD_FILE, BUILD_COLUMNS) as unknown as BuildRecord[];
  const fixes = read(FIX_FILE, FIX_COLUMNS) as unknown as FixRecord[];
  const cves = read(CVE_FILE, CVE_COLUMNS) as unknown as CveRecord[];
  let groupText = '';
  try {
    groupText = readFileSync(`${dir}/${GROUP_FILE}`, 'utf8');
    hash.update(groupText);
  } catch (e) {
    problems.push(`${GROUP_FILE}: cannot read (${(e as Error).message})`);
  }
  const groups = readGroupRecords(groupText);
  problems.push(...groups.problems);
  if (problems.length === 0) problems.push(...validateTables(builds, fixes, cves), ...validateGroups(groups.records, cves));
  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_KB_DATA_INVALID', `the Exchange knowledge base in ${dir} has ${problems.length} problem(s)`, { details: problems.slice(0, 50) });
  }
  return { ...toTables(builds, fixes, cves, hash.digest('hex').slice(0, 12)), groups: toCveGroups(groups.records) };
}

/** Every problem in the tables (empty when valid). Pure; shared with scripts/kb-refresh.ts. */
export function validateTables(builds: readonly BuildRecord[], fixes: readonly FixRecord[], cves: readonly CveRecord[]): string[] {
  const problems: string[] = [];
  const byBuild = new Map<string, BuildRecord>();
  /** CU key → edition and the CU names used in it. */
  const keys = new Map<string, { edition: string; cus: Set<string> }>();
  const cuNames = new Set<string>();
  builds.forEach((r, i) => {
    const where = `${BUILD_FILE} row ${i + 2} (${r.build || r.name})`;
    const b = tryParseBuildNumber(r.build);
    if (b === null || formatBuild(b) !== r.build) {
      problems.push(`${where}: build must be digits and dots in short form, e.g. 15.2.858.10`);
      return;
    }
    if (!isEdition(r.edition)) problems.push(`${where}: unknown edition "${r.edition}"`);
    else if (editionByRule(b) !== r.edition && r.uncertain !== 'true') problems.push(`${where}: ${r.build} is ${editionByRule(b) ?? 'no edition'} by version rule, row says ${r.edition}`);
    if (r.cu.trim() === '') problems.push(`${where}: empty cu`);
    if (!DATE.test(r.release_date)) problems.push(`${where}: release_date must be YYYY-MM-DD or YYYY-MM`);
    if (r.uncertain !== 'true' && r.uncertain !== 'false') problems.push(`${where}: uncertain must be true or false`);
    if (r.source_repo.trim() === '' && r.source_path.trim() === '') problems.push(`${where}: no source`);
    const prior = byBuild.get(r.build);
    if (prior !== undefined) problems.push(`${where}: duplicate build (also "${prior.name}")`);
    byBuild.set(r.build, r);
    const key = cuKeyOf(b);
    const k = keys.get(key) ?? { edition: r.edition, cus: new Set<string>() };
    if (k.edition !== r.edition) problems.push(`${where}: CU ${key} is listed under both ${k.edition} and ${r.edition}`);
    k.cus.add(r.cu);
    keys.set(key, k);
    cuNames.add(`${r.edition}|${r.cu}`);
  });

  const cveIds = new Set<string>();
  cves.forEach((c, i) => {
    const where = `${CVE_FILE} row ${i + 2} (${c.id})`;
    if (!CVE_ID.test(c.id)) problems.push(`${where}: id must look like CVE-2021-26855 or ADV210002`);
    if (cveIds.has(c.id)) problems.push(`${where}: duplicate id`);
    cveIds.add(c.id);
    if (!(SEVERITIES as readonly string[]).includes(c.severity)) problems.push(`${where}: severity must be one of ${SEVERITIES.filter((s) => s !== '').join(', ')} or empty`);
    if (c.config_dependent !== '' && !/^(?:default-on|opt-in): \S/.test(c.config_dependent)) problems.push(`${where}: config_dependent must start with "default-on: " or "opt-in: "`);
    for (const ref of splitRefs(c.references)) if (!/^https:\/\/\S+$/.test(ref)) problems.push(`${where}: reference is not an https URL: ${ref}`);
  });

  const fixedCves = new Set<string>();
  fixes.forEach((f, i) => {
    const where = `${FIX_FILE} row ${i + 2} (${f.cve} ${f.edition} ${f.cu})`;
    fixedCves.add(f.cve);
    if (!cveIds.has(f.cve)) problems.push(`${where}: ${f.cve} is not in ${CVE_FILE}`);
    if (!isEdition(f.edition)) problems.push(`${where}: unknown edition "${f.edition}"`);
    if (!(FIX_STATUSES as readonly string[]).includes(f.status)) problems.push(`${where}: status must be one of ${FIX_STATUSES.join(', ')}`);
    if (f.source.trim() === '') problems.push(`${where}: no source`);
    if (f.fix_date !== '' && !DATE.test(f.fix_date)) problems.push(`${where}: fix_date must be YYYY-MM-DD or YYYY-MM`);
    if (f.fixed_build !== '' && f.status !== 'no-build-fix' && f.fix_date === '') problems.push(`${where}: a row with a fixed_build needs a fix_date`);
    if (f.fixed_build === '') {
      if (f.status === 'confirmed' || f.status === 'derived') problems.push(`${where}: a ${f.status} row needs a fixed_build`);
      if (!cuNames.has(`${f.edition}|${f.cu}`)) problems.push(`${where}: no build of ${f.edition} ${f.cu} in ${BUILD_FILE}`);
      return;
    }
    const b = tryParseBuildNumber(f.fixed_build);
    if (b === null || formatBuild(b) !== f.fixed_build) {
      problems.push(`${where}: fixed_build must be digits and dots in short form`);
      return;
    }
    const k = keys.get(cuKeyOf(b));
    if (k === undefined) problems.push(`${where}: fixed_build ${f.fixed_build} is in no CU of ${BUILD_FILE}`);
    else {
      if (k.edition !== f.edition) problems.push(`${where}: fixed_build ${f.fixed_build} belongs to ${k.edition}`);
      if (!k.cus.has(f.cu)) problems.push(`${where}: fixed_build ${f.fixed_build} belongs to ${[...k.cus].join('/')}, not ${f.cu}`);
    }
  });
  for (const id of cveIds) if (!fixedCves.has(id)) problems.push(`${CVE_FILE}: ${id} has no row in ${FIX_FILE}`);
  return problems;
}

function splitRefs(s: string): string[] {
  return s.split(/\s+/).filter((x) => x !== '');
}

/** Typed, frozen rows from validated records. */
export function toTables(builds: readonly BuildRecord[], fixes: readonly FixRecord[], cves: readonly CveRecord[], version = 'unversioned'): KbTables {
  return {
    version,
    builds: Object.freeze(
      builds.map(
        (r): ExchangeBuildRow =>
          Object.freeze({
            edition: r.edition,
            name: r.name,
            cu: r.cu,
            su: r.su === '' ? null : r.su,
            releaseDate: r.release_date,
            build: r.build,
            uncertain: r.uncertain === 'true',
            note: r.note,
            source: r.source_path === '' ? r.source_repo : `${r.source_repo} @ ${r.source_path}`,
          }),
      ),
    ),
    fixes: Object.freeze(
      fixes.map(
        (f): ExchangeFixRow =>
          Object.freeze({
            cve: f.cve,
            edition: f.edition,
            cu: f.cu,
            fixedBuild: f.fixed_build === '' ? null : f.fixed_build,
            su: f.su === '' ? null : f.su,
            fixDate: f.fix_date === '' ? null : f.fix_date,
            status: f.status as FixStatus,
            note: f.note,
            source: f.source,
          }),
      ),
    ),
    cves: Object.freeze(
      cves.map(
        (c): CveInfo =>
          Object.freeze({
            id: c.id,
            title: c.title,
            severity: c.severity,
            group: c.group === '' ? null : c.group,
            configDependent: c.config_dependent === '' ? null : c.config_dependent,
            references: Object.freeze(splitRefs(c.references)),
          }),
      ),
    ),
  };
}
