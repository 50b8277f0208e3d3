/**
 * Facts → what the service is and which build it runs. Pure; no I/O; never guesses.
 *
 * Signal rule (why two kinds, and which kinds are independent):
 *   A service is called on-premises Exchange ("ms-exchange") only with at least TWO distinct signal
 *   kinds among `exchange-headers`, `owa-page` and `exporttool-manifest` (see common.ts). The kinds are
 *   chosen by what an impostor can copy in one go:
 *   - a phishing clone copies the page body: markers AND asset paths → both are the one kind `owa-page`;
 *   - a proxy, honeypot or C2 profile imitating Exchange copies response headers: X-OWA-Version AND
 *     X-FEServer & co → both are the one kind `exchange-headers`;
 *   - the export tool manifest at the ECP path is a separate request that clones rarely serve right;
 *   - OWA's FBA redirect of /owa/ (`owa-fba-redirect`) is server routing, not page content. It is the
 *     weakest kind (a honeypot can mimic routing), hence the contradiction veto below.
 *   A build fact never counts as a signal by itself: each build comes with the signal of its source
 *   (X-OWA-Version → exchange-headers, asset path → owa-page, manifest → exporttool-manifest).
 *
 * Exchange Online: any `exchange-online` fact, or any build 15.20 or later, makes the service
 * "ms-exchange-online" (never on-premises); one such fact is enough because that label never leads to
 * a warning. Its build is not reported as a build (it says nothing about on-premises CVEs); it is noted.
 *
 * Contradictions (`inconsistency` facts, platform-consistency.ts): a platform contradiction (an Exchange
 * 2016 build served by IIS 7.5, which 2016 cannot run on: a honeypot tell) or a 404 for the export tool
 * manifest that a claimed 2013+ exact build would serve. Headers are copyable too, so:
 *   - with a valid export tool manifest naming the same CU as every other build seen: the build stands
 *     (a reverse proxy rewriting Server is the likelier story); the contradiction is noted;
 *   - page/routing signals only, or Exchange headers facing both contradictions at once: not Exchange
 *     ("suspected honeypot");
 *   - otherwise Exchange, but never an exact build: the CU at most, with a "suspected honeypot" note.
 * A manifest naming another CU than X-OWA-Version: the lower exact build is kept (a load balancer in
 * front of servers at different CUs, or a made-up value; a warning for the older one beats silence);
 * with a contradiction as well it confirms nothing, so the CU at most.
 *
 * Build rule: only builds of digits and dots (3 parts for "cu", 4 for "exact") with an Exchange major
 * (8 = 2007, 14 = 2010, 15 = 2013 and later) are considered; anything else is rejected with a note.
 * Preference: exact over cu; then by source X-OWA-Version > export tool manifest > asset path. Two
 * different builds from sources of equal trust (e.g. two X-OWA-Version values from servers behind one
 * load balancer) keep the LOWER one: a warning for a possibly older backend beats silence. Every
 * disagreement is noted.
 */
import type { BuildPrecision, Evidence, Fact } from '../sdk.js';
import { excerpt } from '../sdk.js';
import { buildParts, EXCHANGE_SIGNAL_KINDS, isBuild, isOnlineBuild, type ExchangeSignalKind } from './common.js';
import { EXPORTTOOL_MANIFEST_ID } from './exporttool-manifest.js';
import { OWA_ASSET_PATH_ID } from './owa-asset-path.js';
import { X_OWA_VERSION_ID } from './x-owa-version.js';

export interface ExchangeFingerprint {
  /** "ms-exchange", "ms-exchange-online", another product id (e.g. "iis"), or null. */
  readonly product: 'ms-exchange' | 'ms-exchange-online' | (string & {}) | null;
  /** Digits and dots only; null unless product is "ms-exchange" and a build was seen. */
  readonly build: string | null;
  readonly precision: BuildPrecision | null;
  readonly evidence: readonly Evidence[];
  readonly notes: readonly string[];
}

/** Higher is more trustworthy. Unknown detectors rank lowest. */
const SOURCE_RANK: Readonly<Record<string, number>> = {
  [X_OWA_VERSION_ID]: 3,
  [EXPORTTOOL_MANIFEST_ID]: 2,
  [OWA_ASSET_PATH_ID]: 1,
};
const EXCHANGE_MAJORS: ReadonlySet<number> = new Set([8, 14, 15]);
const MAX_EVIDENCE = 8;

type BuildFact = Extract<Fact, { kind: 'build' }>;

function rank(f: BuildFact): number {
  return SOURCE_RANK[f.evidence.detector] ?? 0;
}

/** Numeric comparison of two builds of equal part count. */
function compareBuilds(a: string, b: string): number {
  const pa = buildParts(a);
  const pb = buildParts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Sort order for candidate builds: exact first, then source trust, then the lower build. */
function better(a: BuildFact, b: BuildFact): number {
  if (a.precision !== b.precision) return a.precision === 'exact' ? -1 : 1;
  const r = rank(b) - rank(a);
  if (r !== 0) return r;
  return compareBuilds(a.build, b.build);
}

function validBuild(f: BuildFact): boolean {
  if (typeof f.build !== 'string') return false;
  if (!isBuild(f.build, f.precision === 'exact' ? 4 : 3)) return false;
  return EXCHANGE_MAJORS.has(buildParts(f.build)[0] ?? -1);
}

function cuOf(build: string): string {
  return build.split('.').slice(0, 3).join('.');
}

function pushEvidence(list: Evidence[], e: Evidence): void {
  if (list.length >= MAX_EVIDENCE) return;
  if (list.includes(e)) return;
  list.push(e);
}

export function fingerprintExchange(facts: readonly Fact[]): ExchangeFingerprint {
  const notes: string[] = [];
  const evidence: Evidence[] = [];
  const signals = new Map<ExchangeSignalKind, Evidence>();
  const online: Evidence[] = [];
  const builds: BuildFact[] = [];
  const products: Array<Extract<Fact, { kind: 'product' }>> = [];
  const inconsistencies: Array<Extract<Fact, { kind: 'inconsistency' }>> = [];

  for (const f of facts) {
    switch (f.kind) {
      case 'exchange-signal': {
        const kind = EXCHANGE_SIGNAL_KINDS.find((k) => k === f.signal);
        if (kind === undefined) notes.push(`unknown signal kind "${excerpt(String(f.signal), 40)}" ignored`);
        else if (!signals.has(kind)) signals.set(kind, f.evidence);
        break;
      }
      case 'exchange-online':
        online.push(f.evidence);
        break;
      case 'build':
        if (validBuild(f)) builds.push(f);
        else notes.push(`rejected build value "${excerpt(String(f.build), 40)}" from ${f.evidence.detector}`);
        break;
      case 'product':
        products.push(f);
        break;
      case 'inconsistency':
        inconsistencies.push(f);
        break;
    }
  }

  // Exchange Online front ends: never on-premises, whatever else was seen.
  const onlineBuilds = builds.filter((b) => isOnlineBuild(b.build));
  if (online.length > 0 || onlineBuilds.length > 0) {
    for (const e of online) pushEvidence(evidence, e);
    for (const b of onlineBuilds) pushEvidence(evidence, b.evidence);
    notes.push('Exchange Online (Microsoft 365) front end: not an on-premises server');
    const b = onlineBuilds[0];
    if (b !== undefined) notes.push(`front-end build ${b.build} seen (${b.evidence.detector}); not used for verdicts`);
    return { product: 'ms-exchange-online', build: null, precision: null, evidence, notes };
  }

  const kinds = [...signals.keys()];
  const platform = inconsistencies.filter((c) => c.topic === 'platform');
  const missingManifest = inconsistencies.filter((c) => c.topic !== 'platform');
  // Every kind but the manifest can be copied (page, headers, routing). A contradiction (e.g. a 2016 page
  // on IIS 7.5) vetoes page/routing evidence outright; with Exchange headers as well, two contradictions
  // at once (the platform AND a 404 for the manifest a 2013+ server serves) leave only copyable claims
  // against two independent tells: not Exchange either. One contradiction with Exchange headers: Exchange,
  // but the build is taken at CU precision at most unless the manifest confirms it (below).
  const hasManifest = signals.has('exporttool-manifest');
  const vetoed =
    !hasManifest && inconsistencies.length > 0 && (!signals.has('exchange-headers') || (platform.length > 0 && missingManifest.length > 0));
  if (kinds.length < 2 || vetoed) {
    for (const c of inconsistencies) {
      notes.push(`inconsistent: ${excerpt(String(c.reason), 200)}`);
      pushEvidence(evidence, c.evidence);
    }
    for (const e of signals.values()) pushEvidence(evidence, e);
    const p = products[0];
    if (p !== undefined) pushEvidence(evidence, p.evidence);
    if (vetoed && kinds.length >= 2) {
      notes.push(`suspected honeypot: not called Exchange: its signals (${kinds.join(', ')}) can all be copied and ${inconsistencies.length > 1 ? 'two tells contradict' : 'the platform contradicts'} them`);
    } else if (kinds.length === 1) {
      notes.push(
        `only one Exchange signal kind (${kinds.join(', ')}): not called Exchange; a clone or honeypot can copy one kind` +
          (builds.length > 0 ? '; its build is not reported' : ''),
      );
    }
    return { product: p?.product ?? null, build: null, precision: null, evidence, notes };
  }

  // On-premises Exchange.
  const sorted = [...builds].sort(better);
  let chosen = sorted[0];
  const manifestBuild = builds.find((b) => b.evidence.detector === EXPORTTOOL_MANIFEST_ID);
  // X-OWA-Version and the manifest disagree on the CU (decision, see docs/detectors.md): a load balancer in
  // front of servers at different CUs, or one of the two is made up. Keep the LOWER exact build, as for
  // equally trusted sources: a warning for the older backend beats silence. Within one CU the revisions may
  // drift (web components): the X-OWA-Version build is kept.
  if (chosen !== undefined && manifestBuild !== undefined && chosen !== manifestBuild && chosen.precision === 'exact' && cuOf(chosen.build) !== cuOf(manifestBuild.build)) {
    const lower = compareBuilds(manifestBuild.build, chosen.build) < 0 ? manifestBuild : chosen;
    notes.push(
      `X-OWA-Version ${chosen.evidence.detector === X_OWA_VERSION_ID ? chosen.build : '?'} and the export tool manifest ${manifestBuild.build} name different CUs: kept the lower, ${lower.build}`,
    );
    pushEvidence(evidence, lower === chosen ? manifestBuild.evidence : chosen.evidence);
    chosen = lower;
  }
  if (chosen !== undefined) pushEvidence(evidence, chosen.evidence);
  for (const e of signals.values()) pushEvidence(evidence, e);
  // The manifest confirms a contradicted claim only if it names the same CU as every other build seen.
  const confirmed = manifestBuild !== undefined && builds.every((b) => cuOf(b.build) === cuOf(manifestBuild.build));
  for (const c of inconsistencies) {
    pushEvidence(evidence, c.evidence);
    if (confirmed) {
      notes.push(`inconsistent: ${excerpt(String(c.reason), 200)} (outweighed: the export tool manifest confirms the build; likely a reverse proxy rewriting the Server header)`);
    } else if (c.topic === 'platform') {
      notes.push(`suspected honeypot: ${excerpt(String(c.reason), 200)}; no export tool manifest confirms the build`);
    } else {
      notes.push(`inconsistent: ${excerpt(String(c.reason), 200)}`);
    }
  }
  if (chosen === undefined) {
    notes.push(`Exchange (${kinds.join(' + ')}) but no build was visible`);
    return { product: 'ms-exchange', build: null, precision: null, evidence, notes };
  }
  const seenBuilds = new Set([chosen.build]);
  for (const other of sorted) {
    if (seenBuilds.has(other.build)) continue;
    seenBuilds.add(other.build);
    if (other === manifestBuild && chosen.precision === 'exact' && cuOf(chosen.build) !== cuOf(other.build)) continue; // noted above
    if (other.precision === chosen.precision) {
      notes.push(
        `conflicting ${other.precision} builds: kept ${chosen.build} (${chosen.evidence.detector}), ignored ${other.build} (${other.evidence.detector})`,
      );
      pushEvidence(evidence, other.evidence);
    } else if (cuOf(chosen.build) !== other.build && chosen.precision === 'exact' && buildParts(chosen.build)[0] === 15) {
      notes.push(`CU-level build ${other.build} (${other.evidence.detector}) disagrees with exact build ${chosen.build} (${chosen.evidence.detector})`);
      pushEvidence(evidence, other.evidence);
    }
  }
  // Without a consistent second signal a contradicted claim is not an exact build: the CU at most.
  if (inconsistencies.length > 0 && !confirmed && chosen.precision === 'exact') {
    const cu = cuOf(chosen.build);
    notes.push(`build ${chosen.build} reported at CU precision (${cu}): contradicted, and no export tool manifest confirms it`);
    return { product: 'ms-exchange', build: cu, precision: 'cu', evidence, notes };
  }
  return { product: 'ms-exchange', build: chosen.build, precision: chosen.precision, evidence, notes };
}
