/**
 * What the scan engine needs from the probe client and from each product plugin (probe plan, detectors,
 * fingerprint, knowledge base), as structural interfaces. The engine and assess() depend only on these,
 * so they can be tested with fakes, and the wiring to the real modules lives in one place (the default
 * kit: src/services/default-kit.ts, from src/products/registry.ts `productRuntimes()`).
 */
import type { BuildPrecision, Fact, ProbeRequest, ProbeResponse, ProductFingerprint, ProductKbAssessment } from '../products/sdk.js';
import type { HostSession, NetLimits, ProbeTarget, SessionOptions } from '../core/contracts/probe.js';

/** A product's conclusion for one (ip, port), drawn from all facts (sdk.ts ProductFingerprint). */
export type FingerprintLike = ProductFingerprint;

/** The knowledge base's answer for one build (sdk.ts ProductKbAssessment). */
export type KbAssessmentLike = ProductKbAssessment;

export interface KbLike {
  assess(build: string, precision: BuildPrecision): KbAssessmentLike;
}

export interface DetectionResult {
  readonly facts: readonly Fact[];
  /** Detector id → revision. */
  readonly revisions: Readonly<Record<string, number>>;
  /** Detectors that threw (a bug): reported as warnings, the other detectors' facts still count. */
  readonly errors?: ReadonlyArray<{ readonly detector: string; readonly message: string }>;
}

/** One product as the engine runs it (registry.ts ProductRuntime satisfies it). */
export interface KitProduct {
  /** The record `product` when its fingerprint claims a service (kebab-case, unique). */
  readonly id: string;
  /** Human name, for notes ("Exchange identified but no build number was seen"). */
  readonly name: string;
  /** Probes to send next, given what was answered and what was sent (all products); empty = done. */
  nextProbes(answered: ReadonlyMap<string, ProbeResponse>, sent: ReadonlySet<string>): readonly ProbeRequest[];
  runDetectors(responses: ReadonlyMap<string, ProbeResponse>): DetectionResult;
  fingerprint(facts: readonly Fact[]): FingerprintLike;
  readonly kb: KbLike;
}

/** Everything the engine calls for one (ip, port). */
export interface ScanKit {
  /** `options.beforeConnect` must be called before every new connection (the engine's rate limiter). */
  openSession(target: ProbeTarget, limits: NetLimits, options?: SessionOptions): HostSession | Promise<HostSession>;
  /**
   * The registered products, in registry order. Their probe plans run side by side on one session; the
   * first whose fingerprint claims the service (names its own id) names the record.
   */
  readonly products: readonly KitProduct[];
}
