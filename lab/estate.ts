/**
 * The simulated estate: which host runs what, generated deterministically from a seed. Pure: no I/O.
 *
 * The mix is modelled on the exposure picture of March 2021 (ProxyLogon): mostly Exchange 2016, then 2013,
 * 2019 and 2010 SP3; most servers on a cumulative update without its security update, a share already on
 * the March 2021 security updates (Mar21SU, or RU32 on 2010), a few on later builds (up to 2019 CU15 and
 * Subscription Edition); plus decoys (IIS, nginx, OWA phishing clones, Exchange Online front ends) and
 * hostile hosts. Every host carries its ground truth: what it runs, what it exposes, and what a correct
 * non-intrusive scanner can know about it (`expected`).
 */
import { formatIPv4, parseIPv4 } from '../src/core/ip.js';
import { buildModel, pickExchangeBuild, SHOWCASE_BUILDS } from './build-model.js';
import { DEFAULT_MIX, LAB_KINDS, MAX_HOSTS, type EstateOptions, type LabBuildRow, type LabHost, type LabKind, type LabMix } from './estate-model.js';
import { exchangeHost, otherHost, withOutcome } from './host-factories.js';
import { prng } from './prng.js';

// The estate's public surface stays here (tests, bench, the CLI import it from estate.js).
export * from './estate-model.js';
export { buildModel, groupBuilds, WIRE_DRIFT } from './build-model.js';
export { outcomeOf } from './host-factories.js';
export { prng } from './prng.js';

/**
 * Exact counts per kind for `n` hosts: largest-remainder rounding of the weights, then every kind with a
 * positive weight gets at least one host when n allows (so small test estates still show every kind).
 */
export function kindCounts(n: number, mix: LabMix): Map<LabKind, number> {
  const weights = LAB_KINDS.map((k) => [k, Math.max(0, mix[k] ?? 0)] as const).filter(([, w]) => w > 0);
  const total = weights.reduce((s, [, w]) => s + w, 0);
  const counts = new Map<LabKind, number>();
  if (total === 0 || n === 0) return counts;
  const rema: { k: LabKind; r: number }[] = [];
  let used = 0;
  for (const [k, w] of weights) {
    const exact = (n * w) / total;
    const c = Math.floor(exact);
    counts.set(k, c);
    used += c;
    rema.push({ k, r: exact - c });
  }
  rema.sort((a, b) => b.r - a.r || LAB_KINDS.indexOf(a.k) - LAB_KINDS.indexOf(b.k));
  for (let i = 0; used < n; i++, used++) {
    const e = rema[i % rema.length];
    if (e !== undefined) counts.set(e.k, (counts.get(e.k) ?? 0) + 1);
  }
  if (n >= weights.length) {
    for (const [k] of weights) {
      if ((counts.get(k) ?? 0) > 0) continue;
      // take one from the largest kind
      let big: LabKind | undefined;
      for (const [k2, c2] of counts) if (big === undefined || c2 > (counts.get(big) ?? 0)) big = k2;
      if (big === undefined) break;
      counts.set(big, (counts.get(big) ?? 0) - 1);
      counts.set(k, 1);
    }
  }
  return counts;
}

/**
 * Generates the estate: `hosts` consecutive addresses from `base`, kinds in the proportions of `mix`,
 * shuffled by `seed`. Same inputs, same estate (the ground truth of every test and benchmark).
 */
export function generateEstate(options: EstateOptions, builds: readonly LabBuildRow[]): LabHost[] {
  const { hosts: n, base, seed } = options;
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new RangeError(`hosts must be an integer in 1..${MAX_HOSTS}`);
  const baseInt = parseIPv4(base);
  if (baseInt === null || baseInt >>> 24 !== 127) throw new RangeError(`base must be an IPv4 address in 127.0.0.0/8, got "${base}"`);
  if (baseInt + n - 1 > 0x7fffffff) throw new RangeError(`${n} hosts from ${base} would leave 127.0.0.0/8`);
  const mix = options.mix ?? DEFAULT_MIX;
  const rng = prng(seed);
  const counts = kindCounts(n, mix);
  const kinds: LabKind[] = [];
  for (const k of LAB_KINDS) for (let i = 0; i < (counts.get(k) ?? 0); i++) kinds.push(k);
  // Fisher-Yates with the seeded PRNG.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = kinds[i] as LabKind;
    kinds[i] = kinds[j] as LabKind;
    kinds[j] = t;
  }
  const model = buildModel(builds);
  if (model.later.length === 0 && (counts.get('exchange') ?? 0) > 0) throw new Error('the knowledge base has no usable Exchange builds');
  const showcase = SHOWCASE_BUILDS.map((b) => model.byBuild.get(b)).filter((r): r is LabBuildRow => r !== undefined);
  const ordinals = new Map<LabKind, number>();
  const out: LabHost[] = [];
  for (let i = 0; i < n; i++) {
    const kind = kinds[i] as LabKind;
    const ordinal = ordinals.get(kind) ?? 0;
    ordinals.set(kind, ordinal + 1);
    // Each host draws from its own stream so that changing one host's logic does not reshuffle the rest.
    const hrng = prng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const ip = formatIPv4(baseInt + i);
    if (kind === 'exchange') {
      const row = showcase[ordinal] ?? pickExchangeBuild(hrng, model);
      out.push(withOutcome(exchangeHost(hrng, ip, i, ordinal, row)));
    } else {
      out.push(withOutcome(otherHost(hrng, ip, i, ordinal, kind)));
    }
  }
  return out;
}

/** Counts for the CLI summary and reports: kinds, editions, exposure. */
export function summarizeEstate(hosts: readonly LabHost[]): {
  readonly kinds: Readonly<Record<string, number>>;
  readonly editions: Readonly<Record<string, number>>;
  readonly precision: Readonly<Record<string, number>>;
} {
  const kinds: Record<string, number> = {};
  const editions: Record<string, number> = {};
  const precision: Record<string, number> = {};
  for (const h of hosts) {
    kinds[h.kind] = (kinds[h.kind] ?? 0) + 1;
    if (h.kind === 'exchange' && h.edition !== null) editions[h.edition] = (editions[h.edition] ?? 0) + 1;
    if (h.expected.buildPrecision !== null) precision[h.expected.buildPrecision] = (precision[h.expected.buildPrecision] ?? 0) + 1;
  }
  return { kinds, editions, precision };
}