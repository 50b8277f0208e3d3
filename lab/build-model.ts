/**
 * Which Exchange build a simulated server runs: the March 2021 (ProxyLogon) model. The knowledge base's
 * build rows are grouped by CU; editions, CUs and security-update levels are drawn in the proportions of
 * the exposure seen then, and the first Exchange hosts of every estate get the boundary cases.
 */
import type { LabBuildRow } from './estate-model.js';
import { pick, pickWeighted, type Rng } from './prng.js';

/** Builds whose web components report a revision other than the listed one (observed in the field). */
export const WIRE_DRIFT: Readonly<Record<string, string>> = {
  // Exchange 2019 CU9: listed as 15.2.858.5, OWA/ECP report 15.2.858.2.
  '15.2.858.5': '15.2.858.2',
};

export type Family = '2010' | '2013' | '2016' | '2019' | 'SE';

export interface CuGroup {
  readonly family: Family;
  readonly cu: string;
  readonly cuNumber: number;
  /** The CU (or rollup) itself, without security update. */
  readonly rtm: LabBuildRow;
  readonly rows: readonly LabBuildRow[];
}

/** The day the March 2021 out-of-band security updates shipped. */
const MAR21 = '2021-03-02';
/** The snapshot date of the modelled estate: builds released after it are "later" builds. */
const SNAPSHOT = '2021-03-10';

export function familyOf(build: string): Family | null {
  const p = build.split('.').map(Number);
  const [maj, min, b] = [p[0], p[1], p[2] ?? 0];
  if (maj === 14 && min === 3) return '2010';
  if (maj === 15 && min === 0) return '2013';
  if (maj === 15 && min === 1) return '2016';
  if (maj === 15 && min === 2) return b >= 2562 ? 'SE' : '2019';
  return null;
}

function revisionOf(build: string): number {
  return Number(build.split('.')[3] ?? 0);
}

function cuKey(build: string): string {
  return build.split('.').slice(0, 3).join('.');
}

/** "YYYY-MM" dates compare as mid-month. */
function dateKey(d: string): string {
  return d.length === 7 ? `${d}-15` : d;
}

function cuNumberOf(g: { family: Family; cu: string }): number {
  const m = /(?:CU|RU)\s*(\d+)/.exec(g.cu);
  return m?.[1] !== undefined ? Number(m[1]) : 0;
}

/** Groups the KB's rows by CU (3-part build), ignoring rows marked uncertain (never a lab host's truth). */
export function groupBuilds(rows: readonly LabBuildRow[]): CuGroup[] {
  const byKey = new Map<string, LabBuildRow[]>();
  for (const r of rows) {
    if (r.uncertain) continue;
    const f = familyOf(r.build);
    if (f === null) continue;
    if (f === '2010' && !r.cu.startsWith('SP3')) continue;
    const k = cuKey(r.build);
    const list = byKey.get(k) ?? [];
    list.push(r);
    byKey.set(k, list);
  }
  const groups: CuGroup[] = [];
  for (const list of byKey.values()) {
    list.sort((a, b) => revisionOf(a.build) - revisionOf(b.build));
    const first = list[0];
    if (first === undefined) continue;
    const rtm = list.find((r) => r.su === null) ?? first;
    const family = familyOf(first.build) as Family;
    groups.push({ family, cu: rtm.cu, cuNumber: cuNumberOf({ family, cu: rtm.cu }), rtm, rows: list });
  }
  groups.sort((a, b) => (a.rtm.build < b.rtm.build ? -1 : 1));
  return groups;
}

/** Build pools of the March 2021 model, computed once per KB. */
export interface BuildModel {
  readonly onPrem: ReadonlyMap<Family, readonly CuGroup[]>;
  readonly later: readonly LabBuildRow[];
  readonly byBuild: ReadonlyMap<string, LabBuildRow>;
}

const CU_RANGE: Readonly<Record<Exclude<Family, 'SE'>, readonly [number, number]>> = {
  '2010': [0, 32],
  '2013': [21, 23],
  '2016': [8, 19],
  '2019': [1, 8],
};

export function buildModel(rows: readonly LabBuildRow[]): BuildModel {
  const groups = groupBuilds(rows);
  const onPrem = new Map<Family, CuGroup[]>();
  const later: LabBuildRow[] = [];
  const byBuild = new Map<string, LabBuildRow>();
  for (const g of groups) {
    for (const r of g.rows) byBuild.set(r.build, r);
    if (g.family !== 'SE') {
      const [lo, hi] = CU_RANGE[g.family];
      if (g.cuNumber >= lo && g.cuNumber <= hi && dateKey(g.rtm.releaseDate) <= SNAPSHOT) {
        const list = onPrem.get(g.family) ?? [];
        list.push(g);
        onPrem.set(g.family, list);
        continue;
      }
    }
    // later: 2016 CU20+, 2019 CU9-CU15, SE; the CU itself and its newest update
    const isLater =
      (g.family === '2016' && g.cuNumber >= 20) ||
      (g.family === '2019' && g.cuNumber >= 9 && g.cuNumber <= 15) ||
      g.family === 'SE';
    if (isLater) {
      later.push(g.rtm);
      const newest = g.rows[g.rows.length - 1];
      if (newest !== undefined && newest !== g.rtm) later.push(newest);
    }
  }
  return { onPrem, later, byBuild };
}

/** Edition weights among on-premises Exchange hosts (share of the March 2021 exposure, rounded). */
const EDITION_WEIGHTS: readonly (readonly [Family | 'later', number])[] = [
  ['2010', 0.13],
  ['2013', 0.2],
  ['2016', 0.42],
  ['2019', 0.18],
  ['later', 0.07],
];

export function pickExchangeBuild(rng: Rng, model: BuildModel): LabBuildRow {
  const fam = pickWeighted(rng, EDITION_WEIGHTS);
  if (fam === 'later' || fam === 'SE') return pick(rng, model.later);
  const groups = model.onPrem.get(fam) ?? [];
  if (groups.length === 0) return pick(rng, model.later);
  // Newer CUs are more common: weight grows with the CU's position.
  const g = pickWeighted(
    rng,
    groups.map((x, i) => [x, 1 + (3 * i) / groups.length] as const),
  );
  if (fam === '2010') {
    // 2010: each rollup is its own "CU" group; RU32 (Mar 2021) was applied by about a third.
    const ru32 = groups.find((x) => dateKey(x.rtm.releaseDate) >= MAR21);
    if (ru32 !== undefined && rng() < 0.35) return ru32.rtm;
    return g.rtm;
  }
  const r = rng();
  const mar21 = g.rows.find((x) => x.su !== null && dateKey(x.releaseDate) >= MAR21 && dateKey(x.releaseDate) <= SNAPSHOT);
  if (r < 0.32 && mar21 !== undefined) return mar21;
  const older = g.rows.filter((x) => x.su !== null && dateKey(x.releaseDate) < MAR21);
  if (r < 0.52 && older.length > 0) return pick(rng, older);
  return g.rtm;
}

/**
 * Builds every estate shows when it has room (the first Exchange hosts in address order get one each):
 * the boundary cases the scanner must get right.
 */
export const SHOWCASE_BUILDS: readonly string[] = [
  '14.3.513.0', // 2010 SP3 RU32 (March 2021)
  '15.0.1497.2', // 2013 CU23, no SU
  '15.0.1497.12', // 2013 CU23 Mar21SU
  '15.1.2176.2', // 2016 CU19
  '15.1.2176.9', // 2016 CU19 Mar21SU
  '15.2.792.3', // 2019 CU8
  '15.2.858.5', // 2019 CU9 (wire drift: 15.2.858.2)
  '15.2.1544.4', // 2019 CU14
  '15.2.2562.17', // SE RTM
];
