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
import type { ProbeResponse } from '../core/contracts/probe.js';

// Evidence and BuildPrecision live in core because the ScanRecord contract (core) carries them.
import type { Evidence, BuildPrecision } from '../core/contracts/evidence.js';
export type { Evidence, BuildPrecision } from '../core/contracts/evidence.js';

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

/** Cap and clean an excerpt of hostile text for evidence. */
export function excerpt(text: string, max = 200): string {
  // C0, DEL and C1 controls (latin1-decoded bodies produce C1; some terminals obey them), line/paragraph
  // separators and bidi overrides (they reorder what a reader sees).
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** First value of a header (names are lower-case). */
export function header(r: ProbeResponse, name: string): string | undefined {
  for (const [k, v] of r.headers) if (k === name) return v;
  return undefined;
}
