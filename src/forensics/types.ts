/**
 * Shared types of the offline compromise-assessment kit (`tocsin forensics`).
 * Pure data: no I/O here. Everything read from an input file is hostile text; it is kept as
 * plain strings here and escaped only when printed (see report.ts).
 */

/** Severity of a finding. `info` marks attempts (e.g. a probe answered 302): listed, but not an indicator. */
export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';

export const SEVERITY_ORDER: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

/** What a file is, decided from its header lines and its path (see kinds.ts). */
export type FileKind =
  | 'exchange-httpproxy'
  | 'exchange-ecp-server'
  | 'exchange-oab-generator'
  | 'exchange-log'
  | 'iis-w3c'
  | 'csv-table'
  | 'event-export'
  | 'evtx'
  | 'text'
  | 'file';

/** One output record: the contract of `--format jsonl|csv`. */
export interface FindingRecord {
  /** Rule id, e.g. "proxylogon-ssrf-anchor". */
  readonly check: string;
  /** CVE id(s), comma-separated, or null where none applies (web shells, IoC matches). */
  readonly cve: string | null;
  readonly severity: Severity;
  /** Display path: as given on the command line, with `!/` separating an archive from its member. */
  readonly file: string;
  /** 1-based line number in the (decompressed) file; null for file-level findings (web shell files). */
  readonly line: number | null;
  /** ISO 8601 UTC time of the logged event, or the file's modification time for file findings; null if unknown. */
  readonly time: string | null;
  readonly clientIp: string | null;
  /** What proved it: an excerpt of the log row or file (hostile text; escaped on output). */
  readonly evidence: string;
}

/** A problem with the input that did not stop the run (torn line, unreadable member, unknown format). */
export interface Notice {
  readonly level: 'warning' | 'error';
  readonly file: string;
  readonly line: number | null;
  readonly message: string;
}

/** First and last timestamp seen in the logs of one folder, per kind. */
export interface FolderCoverage {
  readonly folder: string;
  readonly kind: FileKind;
  readonly files: number;
  readonly first: string | null;
  readonly last: string | null;
}

/** Verdict about one campaign's period at risk, from the coverage of the relevant logs. */
export interface CampaignCoverage {
  readonly campaign: string;
  readonly cves: readonly string[];
  readonly needLogsFrom: string;
  /** `covered`: logs start on or before needLogsFrom; `insufficient`: they start later or are absent. */
  readonly status: 'covered' | 'insufficient';
  readonly earliestLog: string | null;
  readonly reason: string;
}

export type Verdict = 'indicators-found' | 'none-found' | 'insufficient-logs';

/** Everything one run produced. */
export interface AnalysisResult {
  readonly verdict: Verdict;
  readonly findings: readonly FindingRecord[];
  readonly notices: readonly Notice[];
  readonly coverage: readonly FolderCoverage[];
  readonly campaigns: readonly CampaignCoverage[];
  readonly stats: {
    readonly files: number;
    readonly logFiles: number;
    readonly bytes: number;
    readonly lines: number;
    readonly candidateLines: number;
  };
  /** True when at least one input could not be read (exit code 2 when nothing was found). */
  readonly hadErrors: boolean;
}
