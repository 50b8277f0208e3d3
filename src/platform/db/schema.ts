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
  /** Migration 0005: a cancel asked for by another process (when, who); the runner's heartbeat reads it. */
  cancel_requested_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  cancel_requested_by: ColumnType<string | null, string | null | undefined, string | null>;
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
  /** Migration 0023: the partition key, the UTC month (first day) the scan started in; a function of scan_id. */
  scan_month: ColumnType<Date, string, string>;
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
/**
 * Migration 0028: `assessments` is a view (these columns, the arrays joined in from verdict_sets) that readers
 * use as before; writers write assessment_rows.
 */
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

/** Migration 0028: the physical assessments, pointing to their verdict set. */
export interface AssessmentRowsTable {
  readonly id: GeneratedAlways<number>;
  observation_id: number;
  kb_revision: string | null;
  verdict_set_id: number;
  notes: JsonColumnDefault<readonly string[]>;
  assessed_at: Generated<Date>;
  fingerprint: ColumnType<AssessedFingerprint | null, string | null | undefined, string | null>;
}

/** Migration 0028: one row per distinct (vulnerable, indeterminate) pair; key = tocsin_verdict_key() of the two. */
export interface VerdictSetsTable {
  readonly id: GeneratedAlways<number>;
  key: Buffer;
  vulnerable: ColumnType<string[], readonly string[], never>;
  indeterminate: ColumnType<string[], readonly string[], never>;
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
  assessment_rows: AssessmentRowsTable;
  verdict_sets: VerdictSetsTable;
  raw_responses: RawResponsesTable;
  observation_responses: ObservationResponsesTable;
  tocsin_migrations: MigrationsTable;
}

// --- Migration 0006: the constituency registry (constituency-store.ts). Declared as a second part of DbSchema
// (interfaces merge), so each stage adds its tables here without touching the others' lines.

type RegistryLayer = 'imported' | 'manual';

export interface OrganisationsTable {
  readonly id: GeneratedAlways<number>;
  name: string;
  sector: string | null;
  country: string | null;
  size: string | null;
  parent_id: number | null;
  layer: RegistryLayer;
  source: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ConstituencyNetworksTable {
  readonly id: GeneratedAlways<number>;
  org_id: number;
  /** cidr: written and read as text (e.g. 192.0.2.0/24). */
  network: string;
  text: string;
  abuse_mailbox: string | null;
  layer: RegistryLayer;
  source: string;
}

export interface ConstituencyAsnsTable {
  readonly id: GeneratedAlways<number>;
  org_id: number;
  asn: number;
  layer: RegistryLayer;
  source: string;
}

export interface ConstituencyDomainsTable {
  readonly id: GeneratedAlways<number>;
  org_id: number;
  domain: string;
  layer: RegistryLayer;
  source: string;
}

export interface ConstituencyContactsTable {
  readonly id: GeneratedAlways<number>;
  org_id: number;
  role: 'security' | 'abuse' | 'technical';
  email: string;
  language: string | null;
  pgp: string | null;
  layer: RegistryLayer;
  source: string;
}

export interface ConstituencyOptOutsTable {
  readonly id: GeneratedAlways<number>;
  org_id: number;
  condition: string;
  expires_at: ColumnType<Date | null, Date | string | null, Date | string | null>;
  layer: RegistryLayer;
  source: string;
  created_at: Generated<Date>;
}

export interface ConstituencyAuditTable {
  readonly id: GeneratedAlways<number>;
  at: Generated<Date>;
  who: string;
  action: 'create' | 'update' | 'delete';
  entity: 'organisation' | 'network' | 'asn' | 'domain' | 'contact' | 'opt-out';
  entity_id: number;
  org_id: number;
  source: string;
  before: ColumnType<Json | null, string | null, string | null>;
  after: ColumnType<Json | null, string | null, string | null>;
}

export interface DbSchema {
  organisations: OrganisationsTable;
  constituency_networks: ConstituencyNetworksTable;
  constituency_asns: ConstituencyAsnsTable;
  constituency_domains: ConstituencyDomainsTable;
  constituency_contacts: ConstituencyContactsTable;
  constituency_opt_outs: ConstituencyOptOutsTable;
  constituency_audit: ConstituencyAuditTable;
}

/** Migration 0007: one import of one feed file (src/platform/db/feed-store.ts). */
export interface FeedImportsTable {
  readonly id: GeneratedAlways<number>;
  feed: string;
  format: string;
  file: string;
  report_type: string | null;
  report_date: ColumnType<string | null, string | null, string | null>;
  sha256: Buffer | null;
  rows_read: Generated<number>;
  imported: Generated<number>;
  duplicate: Generated<number>;
  quarantined: Generated<number>;
  skipped: Generated<number>;
  started_at: Generated<Date>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** Migration 0007: every feed row with its provenance; Exchange rows also have an observation. */
export interface FeedObservationsTable {
  readonly id: GeneratedAlways<number>;
  import_id: number;
  observation_id: number | null;
  feed: string;
  kind: 'exchange' | 'port-open' | 'generic';
  report_type: string;
  report_date: ColumnType<Date, string, string>;
  ip: string;
  port: number | null;
  transport: string | null;
  hostname: string | null;
  seen_at: ColumnType<Date | null, Date | string | null, Date | string | null>;
  tags: ColumnType<string[], readonly string[] | undefined, readonly string[]>;
  reported_cves: ColumnType<string[], readonly string[] | undefined, readonly string[]>;
  compromised: Generated<boolean>;
  product: string | null;
  build: string | null;
  build_precision: 'exact' | 'cu' | null;
  fields: JsonColumnDefault<{ readonly [key: string]: Json }>;
  line: number;
  raw: string;
}

/** Migration 0007: feed rows that could not be read. */
export interface FeedQuarantineTable {
  readonly id: GeneratedAlways<number>;
  import_id: number;
  feed: string;
  format: string;
  file: string;
  line: number;
  raw: string;
  error: string;
  imported_at: Generated<Date>;
}

export interface DbSchema {
  feed_imports: FeedImportsTable;
  feed_observations: FeedObservationsTable;
  feed_quarantine: FeedQuarantineTable;
}

/** Migration 0008: an analyst's assignment of an address or network to an organisation (rule `manual`). */
export interface AttributionOverridesTable {
  readonly id: GeneratedAlways<number>;
  target: string;
  org_id: number;
  note: string | null;
  created_by: string;
  created_at: Generated<Date>;
}

/** Migration 0008: an imported prefix-to-ASN table. */
export interface PrefixAsnsTable {
  prefix: string;
  asn: number;
  source: string;
  imported_at: Generated<Date>;
}

/** Migration 0008: the stored answer of the attribution engine per address. */
export interface AttributionsTable {
  ip: string;
  org_id: number | null;
  rule: 'manual' | 'network' | 'asn' | 'domain' | null;
  confidence: Generated<number>;
  evidence: ColumnType<Json | null, string | null, string | null>;
  tie: Generated<boolean>;
  candidates: JsonColumnDefault<Json>;
  registry_rev: number;
  facts_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  attributed_at: Generated<Date>;
}

/** Migration 0008: owner changes per address, append-only. */
export interface AttributionChangesTable {
  readonly id: GeneratedAlways<number>;
  ip: string;
  from_org_id: number | null;
  to_org_id: number | null;
  rule: string | null;
  registry_rev: number;
  at: Generated<Date>;
}

/** Migration 0008: one row (id 1); `rev` bumped by triggers on every registry change that can change an answer. */
export interface RegistryRevisionTable {
  id: number;
  rev: number;
}

export interface DbSchema {
  attribution_overrides: AttributionOverridesTable;
  prefix_asns: PrefixAsnsTable;
  attributions: AttributionsTable;
  attribution_changes: AttributionChangesTable;
  registry_revision: RegistryRevisionTable;
}

/** Migration 0009: one (ip, port, CVE) finding incarnation (finding-store.ts; rules in src/findings). */
export interface FindingsTable {
  readonly id: GeneratedAlways<number>;
  ip: string;
  /** null: a host-level finding (compromised evidence). */
  port: number | null;
  cve: string;
  product: string | null;
  state: 'open' | 'closed';
  close_reason: 'patched' | 'service-gone' | 'left-scope' | 'false-positive' | 'accepted-risk' | null;
  closed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  closed_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  note: string | null;
  verdict: 'vulnerable' | 'indeterminate' | 'compromised';
  present: Generated<boolean>;
  org_id: number | null;
  first_seen: Timestamp;
  last_seen: Timestamp;
  last_at: Timestamp;
  first_observation_id: number | null;
  last_observation_id: number | null;
  current: Generated<boolean>;
}

/** Migration 0009: append-only history of a finding. */
export interface FindingEventsTable {
  readonly id: GeneratedAlways<number>;
  finding_id: number;
  kind: 'opened' | 'verified' | 'notified' | 'acknowledged' | 'closed' | 'reopened' | 'changed' | 'owner-changed';
  at: Timestamp;
  observation_id: number | null;
  who: string;
  detail: ColumnType<Json | null, string | null, string | null>;
}

/** Migration 0009: the fold's cursors (one row, id 1). */
export interface FindingsFoldStateTable {
  id: number;
  last_assessment_id: number;
  last_attempt_id: number;
  last_feed_row_id: number;
  folded_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface DbSchema {
  findings: FindingsTable;
  finding_events: FindingEventsTable;
  findings_fold_state: FindingsFoldStateTable;
}

/** Migration 0012: a report the Shadowserver API collector downloaded and handed to the import. */
export interface FeedFetchesTable {
  feed: string;
  report_id: string;
  report_type: string;
  report_name: Generated<string>;
  /** Read it as `report_date::text` (the pool's date parser is not pinned). */
  report_date: ColumnType<Date | string, string, string>;
  file: string;
  path: string;
  bytes: number;
  sha256: Buffer;
  status: 'imported' | 'duplicate-report' | 'rejected';
  import_id: number | null;
  error: string | null;
  fetched_at: Generated<Date>;
}

export interface DbSchema {
  feed_fetches: FeedFetchesTable;
}

/** Migration 0013: a warning campaign (campaign-store.ts). */
export interface CampaignsTable {
  readonly id: GeneratedAlways<number>;
  name: string;
  selection: JsonColumn;
  template: string;
  language_default: string;
  state: ColumnType<'draft' | 'approved' | 'cancelled', 'draft' | 'approved' | 'cancelled' | undefined>;
  unattributed: Generated<number>;
  created_at: Generated<Date>;
  created_by: string;
  approved_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  approved_by: ColumnType<string | null, string | null | undefined, string | null>;
  cancelled_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  cancelled_by: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Migration 0013: the outbox, one row per (campaign, organisation). */
export interface CampaignMessagesTable {
  readonly id: GeneratedAlways<number>;
  campaign_id: number;
  org_id: number;
  org_name: string;
  ticket: string;
  message_id: string;
  language: string;
  exposures: JsonColumn;
  chain: JsonColumn;
  step: Generated<number>;
  state: string;
  reason: ColumnType<string | null, string | null | undefined, string | null>;
  attempts: Generated<number>;
  transient_failures: Generated<number>;
  next_attempt_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  smtp_reply: ColumnType<string | null, string | null | undefined, string | null>;
  sent_to: ColumnType<string[] | null, readonly string[] | null | undefined, readonly string[] | null>;
  sent_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  acknowledged_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  updated_at: Generated<Date>;
}

/** Migration 0013: one SMTP transaction tried for an outbox row. */
export interface CampaignAttemptsTable {
  readonly id: GeneratedAlways<number>;
  message_id: number;
  attempt: number;
  step: number;
  recipients: ColumnType<string[], readonly string[], readonly string[]>;
  started_at: ColumnType<Date, Date | string, Date | string>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  outcome: ColumnType<string | null, string | null | undefined, string | null>;
  reply: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface DbSchema {
  campaigns: CampaignsTable;
  campaign_messages: CampaignMessagesTable;
  campaign_attempts: CampaignAttemptsTable;
}

/** Migration 0014: a digest of the stored answer (the refresh rewrites a row only when it differs). */
export interface AttributionsTable {
  answer_hash: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Migration 0014: one row (id 1); the registry revision the last complete attribution refresh reached. */
export interface AttributionWatermarkTable {
  id: number;
  rev: number;
}

export interface DbSchema {
  attribution_watermark: AttributionWatermarkTable;
}

/** Migration 0015: every mail `tocsin mail ingest` read (mail-store.ts). */
export interface MailIngestedTable {
  readonly id: GeneratedAlways<number>;
  sha256: string;
  mail_message_id: string | null;
  kind: string;
  message_id: number | null;
  effect: string;
  location: string;
  bytes: number;
  ingested_at: Generated<Date>;
}

/** Migration 0015: a bounce, delay, reply or auto-reply linked to a campaign message. */
export interface CampaignInboundTable {
  readonly id: GeneratedAlways<number>;
  message_id: number;
  mail_id: number;
  kind: 'bounce' | 'delay' | 'reply' | 'auto-reply' | 'dsn-other';
  step: number;
  from_addr: string | null;
  subject: string | null;
  mail_date: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  excerpt: string | null;
  final_recipient: string | null;
  dsn_action: string | null;
  dsn_status: string | null;
  diagnostic: string | null;
  effect: string;
  at: Generated<Date>;
}

export interface DbSchema {
  mail_ingested: MailIngestedTable;
  campaign_inbound: CampaignInboundTable;
}

/** Migration 0016: a web account (issue 10 §2); email lower-case; org_id set exactly for role 'org'. */
export interface UsersTable {
  readonly id: GeneratedAlways<number>;
  email: string;
  role: 'admin' | 'analyst' | 'org';
  org_id: number | null;
  password_hash: string;
  disabled: Generated<boolean>;
  created_at: Generated<Date>;
}

/** Migration 0016: an API token, stored as its SHA-256 only. */
export interface ApiTokensTable {
  readonly id: GeneratedAlways<number>;
  token_sha256: string;
  name: string;
  user_id: number;
  created_at: Generated<Date>;
  last_used_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  expires_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  revoked_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** Migration 0016: a login session, stored as the SHA-256 of its id, with its CSRF secret. */
export interface SessionsTable {
  id_sha256: string;
  user_id: number;
  csrf_secret: string;
  created_at: Generated<Date>;
  expires_at: Timestamp;
}

/** Migration 0016: one row per read or change of an organisation's data through the web. */
export interface WebAuditTable {
  readonly id: GeneratedAlways<number>;
  at: Generated<Date>;
  user_id: number | null;
  email: string | null;
  method: string;
  route: string;
  org_scope: number | null;
  status: number;
}

export interface DbSchema {
  users: UsersTable;
  api_tokens: ApiTokensTable;
  sessions: SessionsTable;
  web_audit: WebAuditTable;
}

/** Migration 0018: a verification rescan an organisation asked for (queued → running → done | failed). */
export interface RescanRequestsTable {
  readonly id: GeneratedAlways<number>;
  org_id: number;
  requested_by: number | null;
  requested_by_email: string;
  targets: JsonColumn<readonly Json[]>;
  status: ColumnType<'queued' | 'running' | 'done' | 'failed', 'queued' | 'running' | 'done' | 'failed' | undefined>;
  scan_id: number | null;
  scan_ids: ColumnType<number[], readonly number[] | undefined, readonly number[]>;
  runner: string | null;
  requested_at: Generated<Date>;
  started_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  closed: number | null;
  still_open: number | null;
  error: string | null;
}

export interface DbSchema {
  rescan_requests: RescanRequestsTable;
}

/** Migration 0017: one staged incident report (incident-store.ts; rules in src/incidents). */
export interface IncidentsTable {
  readonly id: GeneratedAlways<number>;
  status: ColumnType<string, string | undefined, string>;
  category: string | null;
  owner: string | null;
  org_id: number | null;
  org_text: string | null;
  reporter_name: string;
  reporter_email: string;
  reporter_phone: string;
  tlp: string;
  types: ColumnType<string[], readonly string[], readonly string[]>;
  cves: ColumnType<string[], readonly string[] | undefined, readonly string[]>;
  ongoing: boolean;
  detected_at: Timestamp;
  stage0: JsonColumn;
  stage1: ColumnType<Json | null, string | null | undefined, string | null>;
  final: ColumnType<Json | null, string | null | undefined, string | null>;
  stage1_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  final_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  duplicate_of: number | null;
  reported_by: string;
  reported_via: 'portal' | 'api' | 'cli' | 'staff';
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: Generated<Date>;
  acknowledged_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  first_response_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  resolved_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  ack_due_at: Timestamp;
  response_due_at: Timestamp;
}

/** Migration 0017: append-only history of an incident report. */
export interface IncidentEventsTable {
  readonly id: GeneratedAlways<number>;
  incident_id: number;
  at: ColumnType<Date, Date | string | undefined, Date | string>;
  who: string;
  kind: 'reported' | 'stage1' | 'final' | 'triaged' | 'linked' | 'attachment';
  detail: ColumnType<Json | null, string | null, string | null>;
}

/** Migration 0017: a typed link from a report to a finding, a campaign or another report. */
export interface IncidentLinksTable {
  readonly id: GeneratedAlways<number>;
  incident_id: number;
  kind: 'finding' | 'campaign' | 'incident';
  target_id: number;
  relation: 'related' | 'duplicate-of' | 'reported-from';
  created_at: Generated<Date>;
  created_by: string;
}

/** Migration 0017: an uploaded file (forensics-kit output), at most 5 MiB. */
export interface IncidentAttachmentsTable {
  readonly id: GeneratedAlways<number>;
  incident_id: number;
  filename: string;
  content_type: string;
  bytes: number;
  sha256: string;
  content: Buffer;
  uploaded_at: Generated<Date>;
  uploaded_by: string;
}

export interface DbSchema {
  incidents: IncidentsTable;
  incident_events: IncidentEventsTable;
  incident_links: IncidentLinksTable;
  incident_attachments: IncidentAttachmentsTable;
}

// --- Migration 0019: distributed scan workers (worker-store.ts).

export type ScanBlockState = 'queued' | 'running' | 'done' | 'cancelled';

export interface ScanWorkersTable {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  queue_worker_ids: ColumnType<string[], readonly string[] | undefined, readonly string[]>;
  started_at: Generated<Date>;
  heartbeat_at: Generated<Date>;
}

export interface ScanBlocksTable {
  scan_id: number;
  block_no: number;
  targets: JsonColumn<readonly string[]>;
  hosts: number;
  first_ip: string;
  last_ip: string;
  state: ColumnType<ScanBlockState, ScanBlockState | undefined, ScanBlockState>;
  attempts: Generated<number>;
  leased_by: string | null;
  leased_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface ScanRateBucketsTable {
  scan_id: number;
  per_second: number;
  burst: number;
  tat: Generated<Date>;
}

export interface DbSchema {
  scan_workers: ScanWorkersTable;
  scan_blocks: ScanBlocksTable;
  scan_rate_buckets: ScanRateBucketsTable;
}

/** Migration 0021: a recurring rescan (issue 11 §4; policy and scope as src/schedules and schedule-store.ts read them). */
export interface SchedulesTable {
  readonly id: GeneratedAlways<number>;
  name: string;
  policy: JsonColumn;
  scope: JsonColumn;
  enabled: Generated<boolean>;
  created_at: Generated<Date>;
  created_by: string;
  last_tick: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  next_due: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  lease_owner: ColumnType<string | null, string | null | undefined, string | null>;
  lease_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** Migration 0021: one tick of a schedule that had something to do, and the stage it reached. */
export interface ScheduleRunsTable {
  readonly id: GeneratedAlways<number>;
  schedule_id: number;
  tick_at: ColumnType<Date, Date | string, Date | string>;
  stage: 'planned' | 'scanned' | 'folded' | 'done' | 'failed';
  targets: JsonColumn;
  served: JsonColumnDefault<Json>;
  scan_id: ColumnType<number | null, number | null | undefined, number | null>;
  outcome: JsonColumnDefault<Json>;
  follow_up_campaigns: ColumnType<number[], readonly number[] | undefined, readonly number[]>;
  error: ColumnType<string | null, string | null | undefined, string | null>;
  started_at: Generated<Date>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** Migration 0021: when a schedule last scanned a target (address or CIDR), at the tick's clock. */
export interface ScheduleTargetsTable {
  schedule_id: number;
  target: string;
  last_at: ColumnType<Date, Date | string, Date | string>;
  last_run_id: number;
}

export interface DbSchema {
  schedules: SchedulesTable;
  schedule_runs: ScheduleRunsTable;
  schedule_targets: ScheduleTargetsTable;
}

/** Migration 0020: a one-time invitation or password-reset token, stored as its SHA-256 only. */
export interface AccountTokensTable {
  readonly id: GeneratedAlways<number>;
  token_sha256: string;
  user_id: number;
  purpose: 'invite' | 'reset';
  created_at: Generated<Date>;
  expires_at: Timestamp;
  used_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface DbSchema {
  account_tokens: AccountTokensTable;
}
