/**
 * Reads and validates the in-repo tables (data/exchange/*.csv). Validation is strict: a row that does not
 * parse, a duplicate build, or a fix row for a CU the builds table does not know makes the whole load fail
 * with TOCSIN_KB_DATA_INVALID listing every problem, because a silently skipped row would turn into a
 * wrong verdict.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
import { GROUP_FILE, type GroupRecord } from './schema.js';

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

/** The four data files, in the order they are hashed (the version) and checked. */
const KB_FILES = [BUILD_FILE, FIX_FILE, CVE_FILE, GROUP_FILE] as const;

/**
 * Where `npm run build` leaves the records of the shipped, validated tables (scripts/post-build.mjs, through
 * writeKbCache): next to the compiled module, so an installed copy has it and the TypeScript sources under tsx
 * have none. A scan then starts without parsing and validating ~0.5 MB of CSV (~0.1-0.2 s of CPU per process,
 * bench/README.md stop 17).
 */
export const KB_CACHE_FILE = fileURLToPath(new URL('./exchange-kb.cache.json', import.meta.url));

/**
 * What a cache entry is valid for: the data files' digest and the code that parses and validates them (a rebuild
 * with other rules, even without a new cache, never reuses records the new rules were not run on).
 */
const KB_CODE = createHash('sha256')
  .update([parseCsvRecords, validateTables, validateGroups, readGroupRecords, editionByRule, isEdition, tryParseBuildNumber, formatBuild, cuKeyOf, splitRefs].map(String).join('\n'))
  .update(JSON.stringify([BUILD_COLUMNS, FIX_COLUMNS, CVE_COLUMNS, FIX_STATUSES, SEVERITIES, String(CVE_ID), String(DATE)]))
  .digest('hex');

interface KbCache {
  readonly key: string;
  readonly builds: BuildRecord[];
  readonly fixes: FixRecord[];
  readonly cves: CveRecord[];
  readonly groups: GroupRecord[];
}

/** The files' text (null where unreadable, with the problem), and the digest of what was read. */
function readKbFiles(dir: string): { texts: (string | null)[]; problems: string[]; digest: string } {
  const hash = createHash('sha256');
  const problems: string[] = [];
  const texts = KB_FILES.map((file) => {
    try {
      const text = readFileSync(`${dir}/${file}`, 'utf8');
      hash.update(text);
      return text;
    } catch (e) {
      problems.push(`${file}: cannot read (${(e as Error).message})`);
      return null;
    }
  });
  return { texts, problems, digest: hash.digest('hex') };
}

/** The validated records of the files, or every problem in them (same order as the files are listed). */
function parseKbFiles(texts: readonly (string | null)[], readProblems: readonly string[]): { records: Omit<KbCache, 'key'>; problems: string[] } {
  const problems: string[] = [];
  const read = (i: number, cols: readonly string[]): Record<string, string>[] => {
    const text = texts[i];
    if (text === null || text === undefined) {
      problems.push(...readProblems.filter((p) => p.startsWith(`${KB_FILES[i]}: `)));
      return [];
    }
    const parsed = parseCsvRecords(text, cols);
    problems.push(...parsed.problems.map((p) => `${KB_FILES[i]}: ${p}`));
    return parsed.records;
  };
  const builds = read(0, BUILD_COLUMNS) as unknown as BuildRecord[];
  const fixes = read(1, FIX_COLUMNS) as unknown as FixRecord[];
  const cves = read(2, CVE_COLUMNS) as unknown as CveRecord[];
  if (texts[3] === null) problems.push(...readProblems.filter((p) => p.startsWith(`${GROUP_FILE}: `)));
  const groups = readGroupRecords(texts[3] ?? '');
  problems.push(...groups.problems);
  if (problems.length === 0) problems.push(...validateTables(builds, fixes, cves), ...validateGroups(groups.records, cves));
  return { records: { builds, fixes, cves, groups: groups.records }, problems };
}

function cachedRecords(file: string, key: string): Omit<KbCache, 'key'> | null {
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as KbCache;
    return c.key === key ? c : null;
  } catch {
    // No cache (the sources under tsx, a build without post-build) or an unreadable one: the CSV path decides.
    return null;
  }
}

/**
 * Reads the CSV files from `dir` (default: the package's data/exchange) and validates them. When the files and
 * the validating code are those `cacheFile` was written for, its records are used instead of parsing and
 * validating again: the same rows, the same tables, the same version.
 */
export function loadTables(dir: string = dataPath('exchange'), cacheFile: string | null = KB_CACHE_FILE): KbTables {
  const files = readKbFiles(dir);
  const hit = cacheFile === null || files.problems.length > 0 ? null : cachedRecords(cacheFile, `${files.digest}:${KB_CODE}`);
  const { records, problems } = hit === null ? parseKbFiles(files.texts, files.problems) : { records: hit, problems: [] };
  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_KB_DATA_INVALID', `the Exchange knowledge base in ${dir} has ${problems.length} problem(s)`, { details: problems.slice(0, 50) });
  }
  return { ...toTables(records.builds, records.fixes, records.cves, files.digest.slice(0, 12)), groups: toCveGroups(records.groups) };
}

/**
 * Writes `file` for the tables in `dir` when they are valid (build time: scripts/post-build.mjs); removes a stale
 * one and returns false when they are not, so the load reports their problems.
 */
export function writeKbCache(dir: string = dataPath('exchange'), file: string = KB_CACHE_FILE): boolean {
  const files = readKbFiles(dir);
  const { records, problems } = parseKbFiles(files.texts, files.problems);
  if (problems.length > 0) {
    rmSync(file, { force: true });
    return false;
  }
  const cache: KbCache = { key: `${files.digest}:${KB_CODE}`, ...records };
  writeFileSync(file, JSON.stringify(cache));
  return true;
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
