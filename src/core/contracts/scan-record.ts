/**
 * The JSONL contract of `tocsin scan`: one record per (ip, port) that answered HTTP(S).
 * Every CVE in the knowledge base that is in neither `vulnerable` nor `indeterminate` is
 * not-vulnerable for that build (only meaningful when `product` is "ms-exchange").
 */
import type { BuildPrecision, Evidence } from './evidence.js';

export interface ScanRecord {
  readonly ip: string;
  readonly port: number;
  /** Hostname the target was given as (sent as SNI and Host), or null for a bare address. */
  readonly hostname: string | null;
  readonly tls: boolean;
  /** "ms-exchange" for on-premises Exchange, "ms-exchange-online" for Microsoft 365 front ends, else another product id or null. */
  readonly product: string | null;
  /** e.g. "Exchange Server 2019", "Exchange Server SE"; null if not Exchange or unknown. */
  readonly edition: string | null;
  /** Digits and dots only, e.g. "15.2.1118.40"; null if no build was seen. */
  readonly build: string | null;
  readonly buildPrecision: BuildPrecision | null;
  /** e.g. "CU12"; null if unknown. */
  readonly cu: string | null;
  /** e.g. "Oct22SU"; null if none/unknown (with precision "cu", unknown). */
  readonly su: string | null;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  readonly evidence: readonly Evidence[];
  /** ISO 8601 UTC. */
  readonly scannedAt: string;
  /** HTTP status of the main probe. */
  readonly status: number | null;
  /** Why the verdicts are what they are (e.g. "build maps to 2019 CU9 (listed 15.2.858.5)"). */
  readonly notes: readonly string[];
}
