/**
 * A simulated patch wave: the same estate some time later, after a warning campaign. Some Exchange servers were
 * upgraded (to the newest build of their edition: the March 2021 fixes and every later one included), some went
 * dark behind a filter (they accept connections and never answer, so a scan learns nothing about them), the rest
 * are unchanged. Pure: the wave is applied to the generated estate, so `tocsin demo` can restart the lab with the
 * same seed and a wave, and the ground truth of the restarted lab says what each host now runs.
 */
import { familyOf, groupBuilds, WIRE_DRIFT } from './build-model.js';
import type { LabBuildRow, LabHost } from './estate-model.js';
import { withOutcome } from './host-factories.js';

export interface LabWave {
  /** Addresses of Exchange hosts upgraded to the newest build of their edition. Others are ignored. */
  readonly upgraded?: readonly string[];
  /** Addresses that stop answering: a connection is accepted and then silence (as a tarpit). */
  readonly unreachable?: readonly string[];
}

/** The newest build per edition family (the last row of the highest CU group), uncertain rows left out. */
function newestByFamily(rows: readonly LabBuildRow[]): Map<string, LabBuildRow> {
  const out = new Map<string, { row: LabBuildRow; cu: number }>();
  for (const g of groupBuilds(rows)) {
    const newest = g.rows[g.rows.length - 1];
    if (newest === undefined) continue;
    const have = out.get(g.family);
    if (have === undefined || g.cuNumber > have.cu || (g.cuNumber === have.cu && newest.releaseDate > have.row.releaseDate)) out.set(g.family, { row: newest, cu: g.cuNumber });
  }
  return new Map([...out].map(([k, v]) => [k, v.row]));
}

function upgrade(h: LabHost, row: LabBuildRow): LabHost {
  const exact = h.expected.buildPrecision === 'exact';
  const { outcome: _outcome, ...rest } = h;
  return withOutcome({
    ...rest,
    edition: row.edition,
    build: row.build,
    wireBuild: WIRE_DRIFT[row.build] ?? row.build,
    cu: row.cu,
    su: row.su,
    expected: { product: 'ms-exchange', build: exact ? row.build : row.build.split('.').slice(0, 3).join('.'), buildPrecision: exact ? 'exact' : 'cu', cu: row.cu },
  });
}

function silence(h: LabHost): LabHost {
  const { outcome: _outcome, ...rest } = h;
  return withOutcome({
    ...rest,
    kind: 'tarpit',
    variant: 'silent',
    edition: null,
    build: null,
    wireBuild: null,
    cu: null,
    su: null,
    serverName: null,
    ports: { https: true, http: true },
    exposes: { xOwaVersion: false, exporttool: false, assetPath: null },
    expected: { product: null, build: null, buildPrecision: null, cu: null },
  });
}

/** The estate after the wave (a new array; hosts not named are the same objects). */
export function applyWave(hosts: readonly LabHost[], wave: LabWave, rows: readonly LabBuildRow[]): LabHost[] {
  const up = new Set(wave.upgraded ?? []);
  const dark = new Set(wave.unreachable ?? []);
  if (up.size === 0 && dark.size === 0) return [...hosts];
  const newest = newestByFamily(rows);
  return hosts.map((h) => {
    if (dark.has(h.ip)) return silence(h);
    if (!up.has(h.ip) || h.kind !== 'exchange' || h.build === null) return h;
    const family = familyOf(h.build);
    const row = family === null ? undefined : newest.get(family);
    return row === undefined ? h : upgrade(h, row);
  });
}
