/**
 * The detector registry: every detector is listed here explicitly (zgrab2 style; a test fails if a
 * detector file under src/detectors/ is not listed) and its metadata is checked when this module is
 * imported, so a bad plugin stops the process at start with a clear TOCSIN_DETECTOR_INVALID error
 * instead of misbehaving during a scan.
 *
 * The engine imports this module (never the other way round): it sends the probe plan
 * (`nextProbes` from the product folders), then calls `runDetectors` on all answered probes.
 */
import { TocsinError } from '../core/errors.js';
import type { Detector, Fact, ProbeRequest, ProbeResponse } from './sdk.js';
import { exchangeHeaders } from './exchange/exchange-headers.js';
import { exchangeOnline } from './exchange/exchange-online.js';
import { exporttoolManifest } from './exchange/exporttool-manifest.js';
import { httpServerProduct } from './exchange/http-server-product.js';
import { owaAssetPath } from './exchange/owa-asset-path.js';
import { owaFbaRedirect } from './exchange/owa-fba-redirect.js';
import { owaPageMarkers } from './exchange/owa-page-markers.js';
import { platformConsistency } from './exchange/platform-consistency.js';
import { EXCHANGE_PROBES } from './exchange/probes.js';
import { xOwaVersion } from './exchange/x-owa-version.js';

export { EXCHANGE_PROBES, nextProbes } from './exchange/probes.js';
export { fingerprintExchange, type ExchangeFingerprint } from './exchange/fingerprint.js';

/** Every probe any registered detector may read. */
export const PROBES: readonly ProbeRequest[] = EXCHANGE_PROBES;

/** Every detector, in the order they run. Listing is explicit on purpose: no directory scanning at run time. */
export const DETECTORS: readonly Detector[] = [
  xOwaVersion,
  exporttoolManifest,
  owaAssetPath,
  exchangeHeaders,
  owaPageMarkers,
  owaFbaRedirect,
  exchangeOnline,
  platformConsistency,
  httpServerProduct,
];

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Problems with a probe table (empty if none). */
export function probeProblems(probes: readonly ProbeRequest[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const p of probes) {
    const label = `probe "${String(p.id)}"`;
    if (typeof p.id !== 'string' || !KEBAB.test(p.id)) problems.push(`${label}: id must be kebab-case`);
    if (seen.has(p.id)) problems.push(`${label}: duplicate id`);
    seen.add(p.id);
    if (p.method !== 'GET' && p.method !== 'HEAD') problems.push(`${label}: method must be GET or HEAD (non-intrusive only)`);
    if (typeof p.path !== 'string' || !p.path.startsWith('/') || /[\s\u0000-\u001f\u007f]/.test(p.path)) {
      problems.push(`${label}: path must be an absolute path without spaces or control characters`);
    }
    for (const [k, v] of Object.entries(p.headers ?? {})) {
      if (/[\r\n\u0000]/.test(k) || /[\r\n\u0000]/.test(v)) problems.push(`${label}: header ${JSON.stringify(k)} has CR/LF/NUL`);
    }
    if (typeof p.purpose !== 'string' || p.purpose.trim() === '') problems.push(`${label}: purpose is required`);
  }
  return problems;
}

/** Problems with a detector list against the probes it may read (empty if none). */
export function detectorProblems(detectors: readonly Detector[], probes: readonly ProbeRequest[]): string[] {
  const problems: string[] = [];
  const probeIds = new Set(probes.map((p) => p.id));
  const ids = new Set<string>();
  for (const d of detectors) {
    const label = `detector "${String(d.id)}"`;
    if (typeof d.id !== 'string' || !KEBAB.test(d.id)) problems.push(`${label}: id must be kebab-case`);
    if (ids.has(d.id)) problems.push(`${label}: duplicate id`);
    ids.add(d.id);
    if (!Number.isInteger(d.revision) || d.revision < 1) problems.push(`${label}: revision must be an integer >= 1`);
    if (typeof d.product !== 'string' || d.product.trim() === '') problems.push(`${label}: product is required`);
    if (typeof d.description !== 'string' || d.description.trim() === '') problems.push(`${label}: description is required`);
    if (!Array.isArray(d.probes) || d.probes.length === 0) problems.push(`${label}: must read at least one probe`);
    else for (const p of d.probes) if (!probeIds.has(p)) problems.push(`${label}: unknown probe "${p}" (not in the probe plan)`);
    if (!Array.isArray(d.references) || d.references.length === 0) problems.push(`${label}: references must not be empty`);
    else for (const r of d.references) if (typeof r !== 'string' || !/^https:\/\/\S+$/.test(r)) problems.push(`${label}: reference "${String(r)}" is not an https URL`);
    if (!Array.isArray(d.emits) || d.emits.length === 0) problems.push(`${label}: emits must declare the facts it may state`);
    else for (const e of d.emits) if (!/^(?:build:(?:exact|cu)|signal:[a-z0-9]+(?:-[a-z0-9]+)*|online|product|inconsistency)$/.test(e)) problems.push(`${label}: emits "${e}" is not a fact declaration`);
    if (typeof d.detect !== 'function') problems.push(`${label}: detect must be a function`);
  }
  return problems;
}

/** Throws TOCSIN_DETECTOR_INVALID listing every problem; returns the list unchanged otherwise. */
export function registerDetectors(detectors: readonly Detector[], probes: readonly ProbeRequest[]): readonly Detector[] {
  const problems = [...probeProblems(probes), ...detectorProblems(detectors, probes)];
  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_DETECTOR_INVALID', `detector registration failed: ${problems.join('; ')}`, { details: problems });
  }
  return detectors;
}

// Checked at import: a bad plugin never reaches a scan.
registerDetectors(DETECTORS, PROBES);

export interface DetectorRun {
  readonly facts: readonly Fact[];
  /** Detector id → revision, for every detector that ran (stored with the observation). */
  readonly revisions: Readonly<Record<string, number>>;
  /** Detectors that threw (a bug: they must not). Their facts are missing; the rest still ran. */
  readonly errors: ReadonlyArray<{ readonly detector: string; readonly message: string }>;
}

/**
 * Runs every registered detector over the answered probes (keyed by probe id). Never throws: a
 * detector bug is reported in `errors` and the other detectors still run.
 */
export function runDetectors(responses: ReadonlyMap<string, ProbeResponse>, detectors: readonly Detector[] = DETECTORS): DetectorRun {
  const facts: Fact[] = [];
  const revisions: Record<string, number> = {};
  const errors: Array<{ detector: string; message: string }> = [];
  for (const d of detectors) {
    revisions[d.id] = d.revision;
    if (!d.probes.some((p) => responses.has(p))) continue;
    try {
      for (const f of d.detect(responses)) facts.push(f);
    } catch (e) {
      errors.push({ detector: d.id, message: e instanceof Error ? e.message.slice(0, 200) : 'non-error thrown' });
    }
  }
  return { facts, revisions, errors };
}
