/**
 * What the scan engine needs from storage. Implemented on PostgreSQL in src/platform/db/scan-store.ts;
 * `--no-store` runs pass no store. Every write is idempotent on (scanId, ip, port) so that a scan killed
 * with `kill -9` and resumed never stores or prints a host twice.
 */
import type { ScanRecord } from '../core/contracts/scan-record.js';
import type { Fact } from '../products/sdk.js';
import type { ProbeResponse, TlsCertSummary } from '../core/contracts/probe.js';

/** How a (ip, port) attempt ended. Expected network outcomes are values, not exceptions. */
export type AttemptOutcome =
  | 'answered' // spoke HTTP(S): a ScanRecord exists
  | 'refused'
  | 'timeout'
  | 'tls-error'
  | 'reset'
  | 'protocol-error' // answered something that is not HTTP
  | 'unreachable'
  | 'excluded'; // skipped: in an exclusion list (recorded so the report can say so)

export interface ScanSpec {
  /** Targets exactly as given (addresses, CIDRs, hostnames), after @file/stdin expansion. */
  readonly targets: readonly string[];
  readonly ports: readonly number[];
  /** Free-form options that a resume must reuse (rate limits, probes enabled, ...). */
  readonly options: Readonly<Record<string, unknown>>;
}

export interface StoredScan extends ScanSpec {
  readonly id: string;
  /** `interrupted`: its process stopped or died before the end (`--resume` finishes it). */
  readonly status: 'running' | 'finished' | 'failed' | 'interrupted';
  readonly startedAt: string;
  readonly finishedAt: string | null;
}

export interface AttemptResult {
  readonly ip: string;
  readonly port: number;
  readonly hostname: string | null;
  readonly outcome: AttemptOutcome;
  /** Short description of a failure (e.g. "connect timeout after 3000 ms"); null when answered. */
  readonly detail: string | null;
  /** Present when outcome is "answered". */
  readonly record: ScanRecord | null;
  /** All facts detectors stated, with evidence (the observation). */
  readonly facts: readonly Fact[];
  /** Detector id → revision that produced the facts. */
  readonly detectorRevisions: Readonly<Record<string, number>>;
  /** TLS certificate summary, if any (for attribution later). */
  readonly tlsCert: TlsCertSummary | null;
  /**
   * The answered probes, in the order they were answered (the first is the main probe), as the probe client
   * returned them: stored (deduplicated, capped) so the observation can be re-assessed and its detectors
   * replayed later (`tocsin reassess`). Carried only until the batch is written. Absent when not answered.
   */
  readonly responses?: readonly ProbeResponse[];
  readonly attemptedAt: string;
  /** Tries made (absent = 1): attempts that failed the way congestion makes them fail are tried again. */
  readonly tries?: number;
  /**
   * True when nothing came back from the address even after the retries (connect timeouts: a full
   * accept queue, loss, a filter or no host). Stored, but not "done": a resume tries it again, and a
   * later answer replaces it.
   */
  readonly unanswered?: boolean;
}


export interface ScanStore {
  createScan(spec: ScanSpec): Promise<StoredScan>;
  getScan(id: string): Promise<StoredScan | null>;
  /** Keys "ip|port" already recorded for this scan (any outcome except `unanswered`: a resume redoes those). */
  doneKeys(scanId: string): Promise<Set<string>>;
  /** Store a batch in one transaction; rows already present are left as they are, except unanswered ones, which a new result replaces. */
  recordBatch(scanId: string, results: readonly AttemptResult[]): Promise<void>;
  /** Every stored answered record of the scan, in (ip, port) order: used to rewrite --output on resume. */
  records(scanId: string): AsyncIterable<ScanRecord>;
  finishScan(scanId: string, status: 'finished' | 'failed'): Promise<void>;
}

export function attemptKey(ip: string, port: number): string {
  return `${ip}|${port}`;
}
