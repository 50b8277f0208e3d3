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

/** A run of consecutive calendar days (YYYY-MM-DD, inclusive). */
export interface DayRange {
  readonly from: string;
  readonly to: string;
}

/**
 * What the logs of one folder and kind (a log family: HttpProxy per protocol, IIS W3SVC<n>, ECP server,
 * OAB generator, event exports, ...) cover: first and last timestamp, the days with at least one dated
 * record, and the gaps (days without any record) between the first and the last day.
 */
export interface FolderCoverage {
  readonly folder: string;
  readonly kind: FileKind;
  /** Human name of the log family, e.g. "HttpProxy/Ecp", "IIS W3SVC1", "ECP server". */
  readonly family: string;
  readonly files: number;
  readonly first: string | null;
  readonly last: string | null;
  /** Days (YYYY-MM-DD, as written in the log) with at least one dated record, sorted. */
  readonly days: readonly string[];
  /** Days between the first and the last day without any record. */
  readonly gaps: readonly DayRange[];
}

/**
 * Verdict about one campaign's window, from the days the request logs (HttpProxy, IIS and CSV exports of
 * them) have records on. Rule: `covered` only when those logs have records on every day of the window.
 */
export interface CampaignCoverage {
  readonly campaign: string;
  readonly cves: readonly string[];
  /** The window: the campaign's period of mass exploitation (see CAMPAIGNS in rules.ts). */
  readonly window: DayRange;
  /** Kept for readers of earlier versions: the window's first day. */
  readonly needLogsFrom: string;
  readonly status: 'covered' | 'insufficient';
  readonly earliestLog: string | null;
  /** Days of the window without any request-log record. */
  readonly missing: readonly DayRange[];
  readonly missingDays: number;
  readonly windowDays: number;
  /** Per log family with records in the window: the window's days it lacks; `decides`: a request log. */
  readonly families: readonly {
    readonly folder: string;
    readonly family: string;
    readonly decides: boolean;
    readonly missing: readonly DayRange[];
    readonly missingDays: number;
  }[];
  readonly reason: string;
}

/**
 * `no-logs`: no Exchange or IIS log (nor an export of one) was found in the input: nothing can be said
 * about exploitation from logs (exit code 2 unless a file check found an indicator).
 */
export type Verdict = 'indicators-found' | 'none-found' | 'insufficient-logs' | 'no-logs';

/** Counts over every record found, including those not listed (--since, the in-memory cap). */
export interface FindingCounts {
  readonly indicators: number;
  readonly attempts: number;
  /** Indicators and attempts dated before --since (not listed). */
  readonly indicatorsBeforeSince: number;
  readonly attemptsBeforeSince: number;
  /** Records beyond the in-memory cap (not listed). */
  readonly notKept: number;
}

/** Everything one run produced. */
export interface AnalysisResult {
  readonly verdict: Verdict;
  readonly findings: readonly FindingRecord[];
  readonly counts: FindingCounts;
  readonly notices: readonly Notice[];
  readonly coverage: readonly FolderCoverage[];
  readonly campaigns: readonly CampaignCoverage[];
  readonly stats: {
    readonly files: number;
    /** Files read line by line (any text log, including unrecognised text). */
    readonly logFiles: number;
    /** Of those, Exchange or IIS logs and exports of them (what a verdict can rest on). */
    readonly exchangeLogs: number;
    readonly bytes: number;
    readonly lines: number;
    readonly candidateLines: number;
  };
  /** True when at least one input could not be read (exit code 2 when nothing was found). */
  readonly hadErrors: boolean;
  /** The --since date, when given. */
  readonly since: string | null;
}
