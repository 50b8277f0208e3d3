/**
 * The product registry: every product plugin is listed here explicitly (zgrab2 style), and every product's
 * detectors in its own index.ts (a test fails if a detector file is not listed). Each product is checked
 * when this module is imported (its probes, its detectors against its probes, its CVE policy fields; ids
 * unique across products), so a bad plugin stops the process at start with a clear error instead of
 * misbehaving during a scan: TOCSIN_DETECTOR_INVALID.
 *
 * The engine imports this module (never the other way round): it runs the probe plans of every product
 * (`nextProbes` of each), then `runDetectors` of each over the answered probes, then each fingerprint.
 */
import { TocsinError } from '../core/errors.js';
import type { Detector, Fact, Product, ProbeRequest, ProbeResponse, ProductFingerprint, ProductKb } from './sdk.js';
import { exchange } from './exchange/index.js';

/** Every product, in the order the engine asks them (the first one claiming a service names the record). */
export const PRODUCTS: readonly Product[] = [exchange];

/** Every probe any registered detector may read (all products). */
export const PROBES: readonly ProbeRequest[] = PRODUCTS.flatMap((p) => p.probes);

/** Every detector of every product, in the order they run. */
export const DETECTORS: readonly Detector[] = PRODUCTS.flatMap((p) => p.detectors);

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

/**
 * Problems with a list of products (empty if none): each product's own probes and detectors (the checks
 * above), its metadata, and ids that must be unique across products (product ids, probe ids, detector
 * ids: probe responses are keyed by probe id, revisions by detector id).
 */
export function productProblems(products: readonly Product[]): string[] {
  const problems: string[] = [];
  const productIds = new Set<string>();
  const probeOwner = new Map<string, string>();
  const detectorOwner = new Map<string, string>();
  for (const p of products) {
    const label = `product "${String(p.id)}"`;
    if (typeof p.id !== 'string' || !KEBAB.test(p.id)) problems.push(`${label}: id must be kebab-case`);
    if (productIds.has(p.id)) problems.push(`${label}: duplicate product id`);
    productIds.add(p.id);
    if (typeof p.name !== 'string' || p.name.trim() === '') problems.push(`${label}: name is required`);
    if (!Array.isArray(p.probes) || p.probes.length === 0) problems.push(`${label}: must have at least one probe`);
    if (!Array.isArray(p.detectors) || p.detectors.length === 0) problems.push(`${label}: must have at least one detector`);
    for (const f of ['nextProbes', 'fingerprint', 'cveGroups'] as const) if (typeof p[f] !== 'function') problems.push(`${label}: ${f} must be a function`);
    if (typeof p.kb?.load !== 'function' || typeof p.kb.tables !== 'function' || typeof p.kb.prime !== 'function') problems.push(`${label}: kb must have load, tables and prime`);
    if (!Array.isArray(p.report?.countedApart) || p.report.countedApart.includes(p.id)) problems.push(`${label}: report.countedApart must list ids other than the product's own`);
    if (typeof p.report?.definition !== 'string' || !p.report.definition.includes('{headline}')) problems.push(`${label}: report.definition must say which CVEs count ({headline})`);
    if (typeof p.display?.cell !== 'function' || typeof p.display.column !== 'string') problems.push(`${label}: display needs a column and a cell function`);
    const probes = Array.isArray(p.probes) ? p.probes : [];
    const detectors = Array.isArray(p.detectors) ? p.detectors : [];
    problems.push(...probeProblems(probes).map((x) => `${label}: ${x}`), ...detectorProblems(detectors, probes).map((x) => `${label}: ${x}`));
    for (const q of probes) {
      const owner = probeOwner.get(q.id);
      if (owner !== undefined && owner !== p.id) problems.push(`${label}: probe "${q.id}" is also a probe of product "${owner}"`);
      probeOwner.set(q.id, p.id);
    }
    for (const d of detectors) {
      const owner = detectorOwner.get(d.id);
      if (owner !== undefined && owner !== p.id) problems.push(`${label}: detector "${d.id}" is also a detector of product "${owner}"`);
      detectorOwner.set(d.id, p.id);
    }
  }
  return problems;
}

/** Throws TOCSIN_DETECTOR_INVALID listing every problem; returns the list unchanged otherwise. */
export function registerProducts(products: readonly Product[]): readonly Product[] {
  const problems = productProblems(products);
  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_DETECTOR_INVALID', `product registration failed: ${problems.join('; ')}`, { details: problems });
  }
  return products;
}

// Checked at import: a bad plugin never reaches a scan.
registerProducts(PRODUCTS);

/** The product whose records have this id (its own id, not a related one such as a cloud front end). */
export function productById(id: string, products: readonly Product[] = PRODUCTS): Product | undefined {
  return products.find((p) => p.id === id);
}

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

/**
 * One product as the engine runs it (structurally the engine's KitProduct, src/scan/kit.ts): the plan,
 * its own detectors, the fingerprint and the LOADED knowledge base. Built once per kit, not per host.
 */
export interface ProductRuntime {
  readonly id: string;
  readonly name: string;
  nextProbes(answered: ReadonlyMap<string, ProbeResponse>, sent: ReadonlySet<string>): readonly ProbeRequest[];
  runDetectors(responses: ReadonlyMap<string, ProbeResponse>): DetectorRun;
  fingerprint(facts: readonly Fact[]): ProductFingerprint;
  readonly kb: ProductKb;
}

/** Loads each product's knowledge base (throws TOCSIN_KB_DATA_INVALID) and binds its detectors. */
export function productRuntimes(products: readonly Product[] = PRODUCTS): readonly ProductRuntime[] {
  return products.map((p) => ({
    id: p.id,
    name: p.name,
    nextProbes: p.nextProbes,
    runDetectors: (responses) => runDetectors(responses, p.detectors),
    fingerprint: p.fingerprint,
    kb: p.kb.load(),
  }));
}
