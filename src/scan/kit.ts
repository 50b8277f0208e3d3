/**
 * What the scan engine needs from the probe client, the detectors and the knowledge base, as
 * structural interfaces. The engine and assess() depend only on these, so they can be tested with
 * fakes and so the wiring to the real modules lives in one place (default-kit.ts).
 */
import type { BuildPrecision, Evidence, Fact, ProbeRequest, ProbeResponse } from '../products/sdk.js';
import type { HostSession, NetLimits, ProbeTarget, SessionOptions } from '../core/contracts/probe.js';

/** The Exchange fingerprint of one (ip, port): the conclusion drawn from all facts. */
export interface FingerprintLike {
  /** "ms-exchange", "ms-exchange-online", another product id, or null. */
  readonly product: string | null;
  readonly build: string | null;
  readonly precision: BuildPrecision | null;
  readonly evidence: readonly Evidence[];
  readonly notes: readonly string[];
}

/** The knowledge base's answer for one build. */
export interface KbAssessmentLike {
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

/** Everything the engine calls for one (ip, port). */
export interface ScanKit {
  /** `options.beforeConnect` must be called before every new connection (the engine's rate limiter). */
  openSession(target: ProbeTarget, limits: NetLimits, options?: SessionOptions): HostSession | Promise<HostSession>;
  /** Probes to send next, given what was answered and what was sent; empty = done. */
  nextProbes(answered: ReadonlyMap<string, ProbeResponse>, sent: ReadonlySet<string>): readonly ProbeRequest[];
  runDetectors(responses: ReadonlyMap<string, ProbeResponse>): DetectionResult;
  fingerprint(facts: readonly Fact[]): FingerprintLike;
  readonly kb: KbLike;
}
