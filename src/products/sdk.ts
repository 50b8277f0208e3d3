/**
 * The detector contract (nuclei/zgrab2 style): the engine owns every connection, byte cap and deadline;
 * a detector is data (which probe responses it reads) plus a pure function that turns those responses
 * into facts. Detectors never do I/O and never import the scan engine.
 *
 * Flow per (host, port): the engine sends the probes of stage 0, hands the responses to `nextProbes`
 * of the plan (which may ask for more, e.g. the exporttool manifest when no exact build was seen yet),
 * then runs every registered detector over all responses and passes the facts to the fingerprint.
 */

// The probe vocabulary lives in core/contracts (the probe client and the engine share it); detector
// authors get it from here too.
export type { ProbeRequest, ProbeResponse } from '../core/contracts/probe.js';
import type { ProbeRequest, ProbeResponse } from '../core/contracts/probe.js';
import { sanitiseText } from '../core/text.js';

// Evidence and BuildPrecision live in core because the ScanRecord contract (core) carries them.
import type { Evidence, BuildPrecision } from '../core/contracts/evidence.js';
export type { Evidence, BuildPrecision } from '../core/contracts/evidence.js';
import type { ProductId } from '../core/contracts/verdict.js';
export type { ProductId } from '../core/contracts/verdict.js';

/** Facts a detector can state. Verdicts are NOT facts: they come from the knowledge base. */
export type Fact =
  /** An independent sign that this service is Microsoft Exchange. `signal` names the kind (two different kinds are needed). */
  | { readonly kind: 'exchange-signal'; readonly signal: string; readonly evidence: Evidence }
  /** A build number seen. `precision` says whether it includes the security update ("exact") or only the CU. */
  | { readonly kind: 'build'; readonly build: string; readonly precision: BuildPrecision; readonly evidence: Evidence }
  /** Signs of Exchange Online / Microsoft 365 front ends (not an on-premises server). */
  | { readonly kind: 'exchange-online'; readonly evidence: Evidence }
  /** Any other product seen (e.g. "iis", "nginx"), for the record. */
  | { readonly kind: 'product'; readonly product: string; readonly evidence: Evidence }
  /**
   * Something that contradicts the service being what it claims. `topic` says what: "platform" (e.g. an
   * Exchange 2016 build served by IIS 7.5, which 2016 cannot run on: a honeypot tell) or "missing-manifest"
   * (a 2013+ exact build claimed, yet the export tool manifest that such a server serves answered 404).
   */
  | { readonly kind: 'inconsistency'; readonly topic: InconsistencyTopic; readonly reason: string; readonly evidence: Evidence };

export type InconsistencyTopic = 'platform' | 'missing-manifest';

export interface DetectorMeta {
  /** kebab-case id, unique, e.g. "exchange-x-owa-version". */
  readonly id: string;
  /** Bumped when the logic changes, stored with every observation. */
  readonly revision: number;
  readonly product: string;
  readonly description: string;
  /** Probe ids whose responses this detector reads. */
  readonly probes: readonly string[];
  readonly references: readonly string[];
  /**
   * Which facts it may state, as data for docs and checks: "build:exact", "build:cu", "signal:<kind>",
   * "online" (exchange-online), "product" or "inconsistency". The conformance suite fails on any fact not declared here.
   */
  readonly emits?: readonly FactDeclaration[];
}

export type FactDeclaration = 'build:exact' | 'build:cu' | `signal:${string}` | 'online' | 'product' | 'inconsistency';

export interface Detector extends DetectorMeta {
  /** Pure: responses keyed by probe id (only those that were answered). Must not throw on hostile input. */
  detect(responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[];
}

/** Cap and clean an excerpt of hostile text for evidence: unsafe characters (core/text.ts) become spaces. */
export function excerpt(text: string, max = 200): string {
  return sanitiseText(text, { max, replacement: ' ' });
}

/** First value of a header (names are lower-case). */
export function header(r: ProbeResponse, name: string): string | undefined {
  for (const [k, v] of r.headers) if (k === name) return v;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// The product plugin: one product's probes, detectors, fingerprint and knowledge base behind one interface
// (REVIEW.md: `{id, probes, detectors, fingerprint, kb}`). The engine runs the plans of every registered
// product (src/products/registry.ts); nothing outside the product's folder knows its id or its CVEs.

/** The conclusion a product's fingerprint draws from all facts of one (ip, port). */
export interface ProductFingerprint {
  /**
   * The product's own id when the service is that product (then build/precision drive the verdicts);
   * another id for something seen only for the record (e.g. a cloud front end, "iis"); or null.
   */
  readonly product: string | null;
  /** Digits and dots; null unless `product` is the plugin's own id and a build was seen. */
  readonly build: string | null;
  readonly precision: BuildPrecision | null;
  readonly evidence: readonly Evidence[];
  readonly notes: readonly string[];
}

/** What a knowledge base says about one build. */
export interface ProductKbAssessment {
  readonly edition: string | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  readonly notes: readonly string[];
  /** False when the build is not in the knowledge base. */
  readonly known: boolean;
  /** The listed build the input maps to (itself, or the nearest in its CU when the wire revision drifts). */
  readonly listedBuild?: string | null;
}

/** A loaded, validated knowledge base. */
export interface ProductKb {
  /** Content hash of the data (stored with every assessment). */
  readonly version: string;
  assess(build: string, precision: BuildPrecision): ProductKbAssessment;
}

/**
 * How the knowledge base is loaded. `load` is synchronous and cached per thread; it throws
 * TOCSIN_KB_DATA_INVALID listing every problem. `tables`/`prime` hand validated tables (plain data) to a
 * worker thread so that it does not read and validate the files again.
 */
export interface ProductKbLoader {
  load(): ProductKb;
  tables(): unknown;
  prime(tables: unknown): void;
}

/**
 * A named set of CVEs (ProxyLogon) or a lone CVE (its group name is its id), from the product's data.
 * Headline groups are what a CERT asks about first: they come first in tables and define the report's
 * "patched" and "vulnerable" (see ReportPolicy).
 */
export interface CveGroup {
  readonly name: string;
  readonly cves: readonly string[];
  readonly headline: boolean;
  readonly references: readonly string[];
  readonly source: string;
}

/** One headline CVE in display order; `group` is null for a lone CVE. */
export interface HeadlineCve {
  readonly cve: string;
  readonly group: string | null;
}

export interface CveGroups {
  /** Every group, headline ones first in display order (as the data file lists them). */
  readonly groups: readonly CveGroup[];
  /** The headline CVEs in display order (members of headline groups, group by group). */
  readonly headline: readonly HeadlineCve[];
}

/**
 * What counts for the national picture (`tocsin report`), as data. A server is a distinct address with a
 * record of the product's own id; records of `countedApart` ids are counted on their own line, never as
 * servers. For a set of CVEs (each headline group, and all headline CVEs together):
 *   vulnerable  = some CVE of the set vulnerable;
 *   patched     = a build seen (if `patchedNeedsBuild`) and no CVE of the set vulnerable or indeterminate;
 *   undetermined = the rest (indeterminate is never counted as patched: that would be a guess).
 */
export interface ReportPolicy {
  /** Ids that are NOT the product, but its fingerprint names them (e.g. a cloud front end). */
  readonly countedApart: readonly ProductId[];
  readonly patchedNeedsBuild: boolean;
  /** The definition in words, printed with the numbers. */
  readonly definition: string;
  /** Noun for the servers in summaries, e.g. "on-premises Exchange". */
  readonly serversLabel: string;
}

/** How the scan table shows a record of this product (short edition + CU, or a label for related ids). */
export interface ProductDisplay {
  /** Column header of the product column in the scan table when this is the only product. */
  readonly column: string;
  /** Cell for a record of the product's own id. */
  cell(edition: string | null, cu: string | null): string;
  /** Cells for related ids the fingerprint may name (e.g. a cloud front end). */
  readonly related: Readonly<Record<string, string>>;
}

export interface Product {
  /** kebab-case, unique among products; the `product` of its records. */
  readonly id: ProductId;
  /** Human name, e.g. "Exchange" (notes, docs). */
  readonly name: string;
  /** Every probe the plan may send (ids unique across all products). */
  readonly probes: readonly ProbeRequest[];
  /**
   * Probes to send next, given every answered probe so far (of all products) and every id sent; empty
   * when this product's plan is done. Must look only at its own probe ids.
   */
  nextProbes(answered: ReadonlyMap<string, ProbeResponse>, sent: ReadonlySet<string>): readonly ProbeRequest[];
  /** Detectors in the order they run; each reads only this product's probes. */
  readonly detectors: readonly Detector[];
  /** Pure: this product's detector facts → the conclusion for the record. */
  fingerprint(facts: readonly Fact[]): ProductFingerprint;
  readonly kb: ProductKbLoader;
  /** CVE groups and headline CVEs from the product's data (cached; throws TOCSIN_KB_DATA_INVALID). */
  cveGroups(): CveGroups;
  readonly report: ReportPolicy;
  readonly display: ProductDisplay;
}
