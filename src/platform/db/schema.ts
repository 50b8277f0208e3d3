/**
 * Kysely table types for the schema built by ./migrations. Keep in step with the migrations.
 * Conventions: bigint ids are read as JS numbers (int8 parser in connect.ts); timestamptz is read as a
 * Date and may be written as an ISO string; jsonb is read parsed and written as a JSON string (never as
 * a JS array: node-postgres would send that as a PostgreSQL array).
 */
import type { ColumnType, Generated, GeneratedAlways } from 'kysely';

/** A JSON value as PostgreSQL returns it. */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
type JsonColumn<T extends Json = Json> = ColumnType<T, string, string>;
type JsonColumnDefault<T extends Json = Json> = ColumnType<T, string | undefined, string>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface ScansTable {
  readonly id: GeneratedAlways<number>;
  targets: JsonColumn<readonly string[]>;
  ports: ColumnType<number[], readonly number[], readonly number[]>;
  options: JsonColumnDefault<{ readonly [key: string]: Json }>;
  status: ColumnType<ScanStatus, ScanStatus | undefined>;
  started_at: ColumnType<Date, Date | string | undefined, Date | string>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** Migration 0002: the process running the scan (host name, pid) and its last sign of life. */
  owner_host: ColumnType<string | null, string | null | undefined, string | null>;
  owner_pid: ColumnType<number | null, number | null | undefined, number | null>;
  heartbeat_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  interrupted_reason: ColumnType<string | null, string | null | undefined, string | null>;
}

/** As stored; a reader shows a `running` scan whose owner is gone as `interrupted` (scan-store.ts). */
export type ScanStatus = 'running' | 'finished' | 'failed' | 'interrupted';

export interface ScanAttemptsTable {
  readonly id: GeneratedAlways<number>;
  scan_id: number;
  /** inet: written as text, read as text (host addresses print without a prefix length). */
  ip: string;
  port: number;
  hostname: string | null;
  outcome: string;
  detail: string | null;
  attempted_at: Timestamp;
  /** Migration 0003: tries made; unanswered = no answer to the connect even after retries (resume redoes it). */
  tries: Generated<number>;
  unanswered: Generated<boolean>;
}

export interface ObservationsTable {
  readonly id: Generated<number>;
  source: Generated<string>;
  attempt_id: number | null;
  scan_id: number | null;
  ip: string;
  port: number;
  hostname: string | null;
  tls: boolean;
  product: string | null;
  edition: string | null;
  build: string | null;
  build_precision: 'exact' | 'cu' | null;
  cu: string | null;
  su: string | null;
  status: number | null;
  facts: JsonColumnDefault<readonly Json[]>;
  evidence: JsonColumnDefault<readonly Json[]>;
  detector_revisions: JsonColumnDefault<{ readonly [detector: string]: number }>;
  tls_cert: ColumnType<Json | null, string | null | undefined, string | null>;
  scanned_at: Timestamp;
}

export type { Verdict } from '../../core/contracts/verdict.js';

/** The knowledge base applied to one observation; the latest row per observation counts. */
export interface AssessmentsTable {
  readonly id: GeneratedAlways<number>;
  observation_id: number;
  kb_revision: string | null;
  vulnerable: ColumnType<string[], readonly string[] | undefined, readonly string[]>;
  indeterminate: ColumnType<string[], readonly string[] | undefined, readonly string[]>;
  notes: JsonColumnDefault<readonly string[]>;
  assessed_at: Generated<Date>;
  /** Migration 0004: the service as a re-assessment saw it (replayed detectors); null = the observation's own columns. */
  fingerprint: ColumnType<AssessedFingerprint | null, string | null | undefined, string | null>;
}

/** What an assessment row took the service to be (assessments.fingerprint). */
export interface AssessedFingerprint {
  readonly [key: string]: Json;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly buildPrecision: 'exact' | 'cu' | null;
  readonly cu: string | null;
  readonly su: string | null;
}

/** Migration 0004: content-addressed response blobs (raw-responses.ts). */
export interface RawResponsesTable {
  sha256: Buffer;
  encoding: 'identity' | 'gzip';
  size: number;
  data: Buffer;
  first_seen: Generated<Date>;
}

/** Migration 0004: an observation's responses, in the order they were answered. */
export interface ObservationResponsesTable {
  observation_id: number;
  ord: number;
  probe_id: string;
  url: string;
  status: number;
  redirects: JsonColumnDefault<readonly string[]>;
  head_sha256: Buffer;
  body_sha256: Buffer;
  body_bytes: number;
  client_truncated: boolean;
  stored_truncated: boolean;
}

export interface MigrationsTable {
  id: string;
  applied_at: Generated<Date>;
}

export interface DbSchema {
  scans: ScansTable;
  scan_attempts: ScanAttemptsTable;
  observations: ObservationsTable;
  assessments: AssessmentsTable;
  raw_responses: RawResponsesTable;
  observation_responses: ObservationResponsesTable;
  tocsin_migrations: MigrationsTable;
}
