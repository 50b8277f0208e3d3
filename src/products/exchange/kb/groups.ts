/**
 * CVE groups (data/exchange/cve-groups.csv): the named crises (ProxyLogon, ProxyShell, ...) and the lone
 * CVEs a CERT asks about first. Headline rows define the display order of tables and what the report
 * counts as patched or vulnerable, so they are checked against cves.csv: a group's members are exactly the
 * cves.csv rows with that `group`, a lone CVE's row has none, and every group cves.csv names is listed.
 */
import { readFileSync } from 'node:fs';
import { TocsinError } from '../../../core/errors.js';
import { dataPath } from '../../../platform/paths.js';
import type { CveGroup, CveGroups, HeadlineCve } from '../../sdk.js';
import { parseCsvRecords } from '../../../core/csv.js';
import { CVE_COLUMNS, CVE_FILE, GROUP_COLUMNS, GROUP_FILE, type CveRecord, type GroupRecord } from './schema.js';

const GROUP_NAME = /^[A-Za-z][A-Za-z0-9-]{0,39}$/;

/** Every problem in the groups table against cves.csv (empty when valid). Pure. */
export function validateGroups(groups: readonly GroupRecord[], cves: readonly CveRecord[]): string[] {
  const problems: string[] = [];
  const groupOf = new Map(cves.map((c) => [c.id, c.group]));
  const named = new Map<string, Set<string>>();
  for (const c of cves) if (c.group !== '') named.set(c.group, (named.get(c.group) ?? new Set()).add(c.id));
  const seenGroups = new Set<string>();
  const seenCves = new Set<string>();
  let headlineDone = false;
  groups.forEach((g, i) => {
    const where = `${GROUP_FILE} row ${i + 2} (${g.group})`;
    if (!GROUP_NAME.test(g.group)) problems.push(`${where}: group must be a name of letters, digits and dashes`);
    if (seenGroups.has(g.group)) problems.push(`${where}: duplicate group`);
    seenGroups.add(g.group);
    if (g.headline !== 'true' && g.headline !== 'false') problems.push(`${where}: headline must be true or false`);
    // Row order is display order: headline groups first, so "headline first" needs no second ordering rule.
    if (g.headline === 'false') headlineDone = true;
    else if (headlineDone) problems.push(`${where}: headline rows must come before the others (row order is display order)`);
    const members = g.cves.split(/\s+/).filter((x) => x !== '');
    if (members.length === 0) problems.push(`${where}: cves must list at least one CVE`);
    for (const m of members) {
      if (!groupOf.has(m)) problems.push(`${where}: ${m} is not in ${CVE_FILE}`);
      if (seenCves.has(m)) problems.push(`${where}: ${m} is in two groups`);
      seenCves.add(m);
    }
    const lone = members.length === 1 && members[0] === g.group;
    if (lone) {
      if ((groupOf.get(g.group) ?? '') !== '') problems.push(`${where}: lone CVE ${g.group} has group "${groupOf.get(g.group) ?? ''}" in ${CVE_FILE}`);
    } else {
      const want = named.get(g.group) ?? new Set<string>();
      const got = new Set(members);
      const missing = [...want].filter((m) => !got.has(m));
      const extra = members.filter((m) => !want.has(m));
      if (missing.length > 0 || extra.length > 0) {
        problems.push(`${where}: members differ from the rows of ${CVE_FILE} with group ${g.group} (missing: ${missing.join(' ') || '-'}; not in that group: ${extra.join(' ') || '-'})`);
      }
    }
    for (const ref of g.references.split(/\s+/).filter((x) => x !== '')) if (!/^https:\/\/\S+$/.test(ref)) problems.push(`${where}: reference is not an https URL: ${ref}`);
    if (g.source.trim() === '') problems.push(`${where}: no source`);
  });
  for (const name of named.keys()) if (!seenGroups.has(name)) problems.push(`${CVE_FILE}: group ${name} is not listed in ${GROUP_FILE}`);
  return problems;
}

/** Typed, frozen groups from validated records. */
export function toCveGroups(groups: readonly GroupRecord[]): CveGroups {
  const list = groups.map(
    (g): CveGroup =>
      Object.freeze({
        name: g.group,
        cves: Object.freeze(g.cves.split(/\s+/).filter((x) => x !== '')),
        headline: g.headline === 'true',
        references: Object.freeze(g.references.split(/\s+/).filter((x) => x !== '')),
        source: g.source,
      }),
  );
  const headline: HeadlineCve[] = [];
  for (const g of list) {
    if (!g.headline) continue;
    const lone = g.cves.length === 1 && g.cves[0] === g.name;
    for (const cve of g.cves) headline.push(Object.freeze({ cve, group: lone ? null : g.name }));
  }
  return Object.freeze({ groups: Object.freeze(list), headline: Object.freeze(headline) });
}

/** Reads the raw group records (for loadTables, which hashes and validates everything together). */
export function readGroupRecords(text: string): { records: GroupRecord[]; problems: string[] } {
  const parsed = parseCsvRecords(text, GROUP_COLUMNS);
  return { records: parsed.records as unknown as GroupRecord[], problems: parsed.problems.map((p) => `${GROUP_FILE}: ${p}`) };
}

/**
 * Reads cve-groups.csv and cves.csv from `dir` and validates them together; far cheaper than the whole
 * knowledge base (no builds, no fix rows), for commands that only need the headline list (`tocsin report`).
 * Throws TOCSIN_KB_DATA_INVALID listing every problem.
 */
export function loadCveGroups(dir: string = dataPath('exchange')): CveGroups {
  const problems: string[] = [];
  const read = (file: string): string => {
    try {
      return readFileSync(`${dir}/${file}`, 'utf8');
    } catch (e) {
      problems.push(`${file}: cannot read (${(e as Error).message})`);
      return '';
    }
  };
  const groups = readGroupRecords(read(GROUP_FILE));
  const cves = parseCsvRecords(read(CVE_FILE), CVE_COLUMNS);
  if (problems.length === 0) {
    problems.push(...groups.problems, ...cves.problems.map((p) => `${CVE_FILE}: ${p}`));
    if (problems.length === 0) problems.push(...validateGroups(groups.records, cves.records as unknown as CveRecord[]));
  }
  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_KB_DATA_INVALID', `the Exchange CVE groups in ${dir} have ${problems.length} problem(s)`, { details: problems.slice(0, 50) });
  }
  return toCveGroups(groups.records);
}
