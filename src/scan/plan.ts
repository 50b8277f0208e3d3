/**
 * A scan plan: everything a scan needs, as plain data, so it can be stored with the scan (resume
 * reuses it) and handed to worker threads (structured clone). Each worker rebuilds its own target
 * iterator, exclusion matcher, rate limiter and probe kit from it (setup.ts).
 */
import type { NetLimits } from '../core/contracts/probe.js';
import type { PortSpec } from './port-spec.js';

export interface ScanPlan {
  /** Target expressions (addresses, CIDRs, hostnames) after @file/stdin expansion, already validated. */
  readonly targets: readonly string[];
  readonly ports: readonly PortSpec[];
  /** Total jobs in flight (split across workers). */
  readonly concurrency: number;
  readonly limits: NetLimits;
  /** Exclusion entries (addresses/CIDRs), already validated. */
  readonly exclusions: readonly string[];
  /** New connections per second overall; 0 = unlimited (split across workers). */
  readonly rate: number;
  /** New connections per second into one /24 (IPv4) or /64 (IPv6); 0 = unlimited. */
  readonly ratePerNetwork: number;
}
