#!/usr/bin/env -S node --import tsx
/**
 * kb-refresh: re-derive the Exchange knowledge-base tables (data/exchange/*.csv) from source files on
 * disk, and print what changed (added / changed / removed rows per table). Nothing is downloaded: fetch
 * or copy the sources first, then point this tool at them.
 *
 * Usage:
 *   node --import tsx scripts/kb-refresh.ts --shared DIR [--out DIR] [--check]
 *
 *   --shared DIR   a directory holding the joined source tables exchange-builds.csv and
 *                  exchange-cve-fixes.csv (the layout of ../shared/data/exchange/, described in
 *                  data/exchange/PROVENANCE.md, which also says how those were derived from the
 *                  Microsoft Learn build-numbers page, righel/ms-exchange-version-nse and CSS-Exchange).
 *   --out DIR      where builds.csv, cve-fixes.csv and cves.csv live (default: data/exchange of this
 *                  package). cves.csv keeps its hand-curated columns; new ids are added with blanks.
 *   --msrc FILE    MSRC affected-product release dates, in the shape of righel/ms-exchange-version-nse's
 *                  cves_affected_products_dict.json (default: DIR/msrc/righel-cves_affected_products_dict.json
 *                  when present). Used only to pin the day of fixes whose build date is month-only.
 *   --builds FILE  more source build rows in the exchange-builds.csv layout (repeatable). Default: every
 *                  OUT/sources/*-builds.csv (e.g. the Exchange 2007 rollups, which the shared table lacks).
 *   --fixes FILE   more source fix rows in the exchange-cve-fixes.csv layout (repeatable). Default: every
 *                  OUT/sources/*-cve-fixes.csv (e.g. the 2013-2016 bulletins that MSRC's extract lists
 *                  without products). CVEs that MSRC's extract lists but no fix source covers get rows
 *                  derived from the extract itself (see deriveMsrcOnlyFixes in refresh.ts).
 *   --learn-html FILE       the Learn page "Exchange Server build numbers and release dates" saved as HTML
 *                           (repeatable); adds builds the other sources lack.
 *   --righel-versions FILE  righel/ms-exchange-version-nse ms-exchange-unique-versions-dict.json (repeatable);
 *                           adds builds the other sources lack.
 *                  Sources are merged in the order above (shared table, sources/*.csv, Learn, righel): the
 *                  first source naming a build wins; a later one with another date is reported as a conflict.
 *   --check        do not write; exit 1 if the tables would change (for CI).
 *
 * Exit codes: 0 written (or unchanged), 1 --check found differences, 2 bad arguments or unreadable input,
 * 3 the derived tables fail validation (nothing written).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { csvRecordsDocument, DATA_FILE_CSV, parseCsvRecords } from '../src/core/csv.js';
import { BUILD_COLUMNS, BUILD_FILE, CVE_COLUMNS, CVE_FILE, FIX_COLUMNS, FIX_FILE, type BuildRecord, type CveRecord, type FixRecord } from '../src/products/exchange/kb/schema.js';
import { buildKey, cveKey, deriveBuilds, deriveCves, deriveFixes, deriveMsrcOnlyFixes, diffTables, fixKey, msrcDatesFromJson, msrcProductsFromJson, type MsrcDates, type MsrcProducts, type SourceBuild, type SourceFix, type TableDiff } from '../src/products/exchange/kb/refresh.js';
import { validateTables } from '../src/products/exchange/kb/load.js';
import { fromLearnHtml, fromRighelVersions, mergeSources } from '../src/products/exchange/kb/sources.js';
import { dataPath } from '../src/platform/paths.js';

interface Args {
  shared: string;
  out: string;
  check: boolean;
  msrc: string | undefined;
  extraBuilds: string[] | undefined;
  extraFixes: string[] | undefined;
  learnHtml: string[];
  righelVersions: string[];
}

function parseArgs(argv: readonly string[]): Args {
  let shared: string | undefined;
  let out = dataPath('exchange');
  let check = false;
  let msrc: string | undefined;
  let extraBuilds: string[] | undefined;
  let extraFixes: string[] | undefined;
  const learnHtml: string[] = [];
  const righelVersions: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--shared') shared = argv[++i];
    else if (a === '--out') out = argv[++i] ?? out;
    else if (a === '--check') check = true;
    else if (a === '--msrc') msrc = argv[++i];
    else if (a === '--builds') (extraBuilds ??= []).push(argv[++i] ?? '');
    else if (a === '--fixes') (extraFixes ??= []).push(argv[++i] ?? '');
    else if (a === '--learn-html') learnHtml.push(argv[++i] ?? '');
    else if (a === '--righel-versions') righelVersions.push(argv[++i] ?? '');
    else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  if (shared === undefined) throw new Error('--shared DIR is required');
  return { shared, out, check, msrc, extraBuilds, extraFixes, learnHtml, righelVersions };
}

function readRecords(file: string, required: readonly string[]): Record<string, string>[] {
  const { records, problems } = parseCsvRecords(readFileSync(file, 'utf8'), required);
  if (problems.length > 0) throw new Error(`${file}: ${problems.join('; ')}`);
  return records;
}

/** The current table, read leniently: after a column change the diff shows every row as changed. */
function readExisting<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return parseCsvRecords(readFileSync(file, 'utf8'), []).records as T[];
}

function summary(name: string, d: TableDiff): string {
  const lines = [`${name}: ${d.added.length} added, ${d.changed.length} changed, ${d.removed.length} removed`];
  for (const k of d.added.slice(0, 50)) lines.push(`  + ${k}`);
  for (const k of d.changed.slice(0, 50)) lines.push(`  ~ ${k}`);
  for (const k of d.removed.slice(0, 50)) lines.push(`  - ${k}`);
  const more = d.added.length + d.changed.length + d.removed.length - lines.length + 1;
  if (more > 0) lines.push(`  ... and ${more} more`);
  return lines.join('\n');
}

export function main(argv: readonly string[]): number {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`kb-refresh: ${(e as Error).message}\n`);
    return 2;
  }
  let srcBuilds: SourceBuild[];
  let srcFixes: SourceFix[];
  try {
    const sourcesDir = join(args.out, 'sources');
    const extra =
      args.extraBuilds ??
      (existsSync(sourcesDir) ? readdirSync(sourcesDir).filter((f) => f.endsWith('-builds.csv')).sort().map((f) => join(sourcesDir, f)) : []);
    const buildFiles = [join(args.shared, 'exchange-builds.csv'), ...extra];
    const fromCsv: SourceBuild[] = buildFiles.flatMap((file) => readRecords(file, ['product', 'name', 'release_date', 'build_short', 'source_repo', 'source_path'])).map((r) => ({
      product: r.product ?? '',
      name: r.name ?? '',
      release_date: r.release_date ?? '',
      build: r.build_short ?? '',
      source_repo: r.source_repo ?? '',
      source_path: r.source_path ?? '',
    }));
    const adapted = [
      ...args.learnHtml.map((f) => fromLearnHtml(readFileSync(f, 'utf8'), basename(f))),
      ...args.righelVersions.map((f) => fromRighelVersions(readFileSync(f, 'utf8'), basename(f))),
    ];
    for (const a of adapted) for (const s of a.skipped) process.stderr.write(`warning: skipped ${s}\n`);
    const merged = mergeSources([fromCsv, ...adapted.map((a) => a.rows)]);
    for (const c of merged.conflicts) process.stderr.write(`conflict: ${c}\n`);
    srcBuilds = merged.rows;
    const extraFixes =
      args.extraFixes ??
      (existsSync(sourcesDir) ? readdirSync(sourcesDir).filter((f) => f.endsWith('-cve-fixes.csv')).sort().map((f) => join(sourcesDir, f)) : []);
    const fixFiles = [join(args.shared, 'exchange-cve-fixes.csv'), ...extraFixes];
    srcFixes = fixFiles.flatMap((file) => readRecords(file, ['cve', 'product', 'cu', 'first_fixed_build', 'source', 'su_name', 'notes'])).map((r) => ({
      cve: r.cve ?? '',
      product: r.product ?? '',
      cu: r.cu ?? '',
      first_fixed_build: r.first_fixed_build ?? '',
      source: r.source ?? '',
      su_name: r.su_name ?? '',
      notes: r.notes ?? '',
    }));
  } catch (e) {
    process.stderr.write(`kb-refresh: cannot read sources: ${(e as Error).message}\n`);
    return 2;
  }
  const builds = deriveBuilds(srcBuilds);
  let msrc: MsrcDates = new Map();
  let msrcProducts: MsrcProducts = new Map();
  const msrcFile = args.msrc ?? join(args.shared, 'msrc', 'righel-cves_affected_products_dict.json');
  if (existsSync(msrcFile)) {
    const json: unknown = JSON.parse(readFileSync(msrcFile, 'utf8'));
    msrc = msrcDatesFromJson(json);
    msrcProducts = msrcProductsFromJson(json);
  } else if (args.msrc !== undefined) {
    process.stderr.write(`kb-refresh: cannot read ${msrcFile}\n`);
    return 2;
  }
  const sourced = deriveFixes(srcFixes, builds.rows, msrc);
  // CVEs MSRC lists that no fix source covers: rows from the MSRC extract itself.
  const msrcOnly = deriveMsrcOnlyFixes(msrcProducts, builds.rows, new Set(sourced.rows.map((r) => r.cve)));
  const fixes = { rows: [...sourced.rows, ...msrcOnly.rows], problems: [...sourced.problems, ...msrcOnly.problems] };
  const oldBuilds = readExisting<BuildRecord>(join(args.out, BUILD_FILE));
  const oldFixes = readExisting<FixRecord>(join(args.out, FIX_FILE));
  const oldCves = readExisting<CveRecord>(join(args.out, CVE_FILE));
  const cves = deriveCves(fixes.rows, oldCves);
  for (const p of [...builds.problems, ...fixes.problems, ...cves.problems]) process.stderr.write(`warning: ${p}\n`);

  const invalid = validateTables(builds.rows, fixes.rows, cves.rows);
  if (invalid.length > 0) {
    process.stderr.write(`kb-refresh: derived tables are invalid, nothing written:\n${invalid.map((p) => `  - ${p}`).join('\n')}\n`);
    return 3;
  }
  const diffs = [
    summary(BUILD_FILE, diffTables(oldBuilds, builds.rows, buildKey)),
    summary(FIX_FILE, diffTables(oldFixes, fixes.rows, fixKey)),
    summary(CVE_FILE, diffTables(oldCves, cves.rows, cveKey)),
  ];
  process.stdout.write(`${diffs.join('\n')}\n`);
  const outputs: [string, string][] = [
    [join(args.out, BUILD_FILE), csvRecordsDocument(BUILD_COLUMNS, builds.rows, DATA_FILE_CSV)],
    [join(args.out, FIX_FILE), csvRecordsDocument(FIX_COLUMNS, fixes.rows, DATA_FILE_CSV)],
    [join(args.out, CVE_FILE), csvRecordsDocument(CVE_COLUMNS, cves.rows, DATA_FILE_CSV)],
  ];
  const differs = outputs.filter(([file, text]) => !existsSync(file) || readFileSync(file, 'utf8') !== text);
  if (args.check) {
    process.stdout.write(differs.length === 0 ? 'tables are up to date\n' : `would change: ${differs.map(([f]) => f).join(', ')}\n`);
    return differs.length === 0 ? 0 : 1;
  }
  for (const [file, text] of differs) writeFileSync(file, text);
  process.stdout.write(`wrote ${differs.length} file(s) to ${args.out}: ${builds.rows.length} builds, ${fixes.rows.length} fix rows, ${cves.rows.length} CVEs\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop() ?? '\0')) {
  process.exitCode = main(process.argv.slice(2));
}
