/**
 * One registry of error codes (fastify-style `TOCSIN_<AREA>_<WHAT>`).
 * Every error the user can see carries a stable code, says what to do next,
 * and is marked either a user mistake (`user`) or a bug/environment failure (`internal`).
 * Expected network outcomes (refused, timeout, TLS error) are NOT errors: they are values (see net).
 * docs/errors.md is generated from this table (scripts/gen-errors-doc.ts; a test fails when it is stale).
 */

/** HTTP statuses an error maps to: 400 user input, 401 not logged in, 403 not allowed, 404 not found, 409 busy, 429 throttled, 503 storage, 500 internal. */
export type HttpStatus = 400 | 401 | 403 | 404 | 409 | 429 | 500 | 503;

export interface ErrorSpec {
  /** `user`: a mistake the user can fix; `internal`: a bug or a failure of the environment. */
  readonly kind: 'user' | 'internal';
  /** Process exit status (sysexits.h where one fits; the forensics kit keeps its documented 2). */
  readonly exit: number;
  /** Status of an HTTP API response carrying this error. */
  readonly http: HttpStatus;
  /** When it happens (for docs/errors.md). */
  readonly means: string;
  /** What to do next, printed under the message. */
  readonly hint: string;
}
export const ERROR_CODES = {
  TOCSIN_CONFIG_INVALID: {
    kind: 'user', exit: 78, http: 500, means: 'A setting (environment variable or option default) is invalid; every problem is listed.',
    hint: 'Fix the listed settings; run `tocsin check` to validate without side effects.',
  },
  TOCSIN_TARGET_INVALID: {
    kind: 'user', exit: 64, http: 400, means: 'A target or exclusion entry is malformed, or the targets expand to too many addresses.',
    hint: 'Fix or remove the named target; nothing was sent.',
  },
  TOCSIN_ARG_INVALID: {
    kind: 'user', exit: 64, http: 400, means: 'A command-line argument or option value is invalid.',
    hint: 'See `tocsin <command> --help`.',
  },
  TOCSIN_INPUT_UNREADABLE: {
    kind: 'user', exit: 66, http: 400, means: 'A file the user named (targets, exclusions, IoCs) cannot be read.',
    hint: 'Check the path and its permissions.',
  },
  TOCSIN_OUTPUT_UNWRITABLE: {
    kind: 'user', exit: 73, http: 400, means: 'An output the user named (--output, --truth, standard output) cannot be written.',
    hint: 'Check that the folder exists and is writable and the disk is not full, or choose another path.',
  },
  TOCSIN_DB_CONNECT: {
    kind: 'internal', exit: 69, http: 503, means: 'The database server cannot be reached or refuses the login.',
    hint: 'Check TOCSIN_DATABASE_URL or the embedded database under TOCSIN_HOME.',
  },
  TOCSIN_DB_MIGRATION: {
    kind: 'internal', exit: 70, http: 503, means: 'A schema migration failed.',
    hint: 'A schema migration failed; the database was left at the last good version.',
  },
  TOCSIN_DB_EMBEDDED_START: {
    kind: 'internal', exit: 69, http: 503, means: 'The embedded PostgreSQL could not be set up, started or stopped.',
    hint: 'The embedded PostgreSQL did not start; see the log under TOCSIN_HOME/pg.log.',
  },
  // Storage failures caused by the environment (not bugs): each names what to do; a scan's also names its resume command.
  TOCSIN_HOME_UNUSABLE: {
    kind: 'user', exit: 73, http: 503, means: 'TOCSIN_HOME cannot be created or written (missing parent, permissions, read-only, not a folder).',
    hint: 'Set TOCSIN_HOME to a writable directory (it is created if missing), or set TOCSIN_DATABASE_URL.',
  },
  TOCSIN_DB_LOST: {
    kind: 'internal', exit: 69, http: 503, means: 'The database went away while a command was using it.',
    hint: 'The database went away (server stopped or killed, `tocsin db stop`, TOCSIN_HOME removed); what was stored is kept.',
  },
  TOCSIN_DB_WRITE: {
    kind: 'internal', exit: 74, http: 503, means: 'The database or TOCSIN_HOME cannot write (read-only file system, I/O error).',
    hint: 'The database could not write (read-only file system or an I/O error); what was stored before is kept.',
  },
  TOCSIN_DISK_FULL: {
    kind: 'internal', exit: 74, http: 503, means: 'The file system under TOCSIN_HOME or the database is full.',
    hint: 'Free space on the named file system (or move TOCSIN_HOME), then run the command again.',
  },
  TOCSIN_SCAN_BUSY: {
    kind: 'user', exit: 75, http: 409, means: 'Another live process is running the scan.',
    hint: 'Another live tocsin process is running this scan; wait for it or stop it (Ctrl+C), then resume.',
  },
  TOCSIN_SCAN_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'No stored scan has the given id (or it is not a scan id).',
    hint: 'List scans with `tocsin report --scans`.',
  },
  TOCSIN_SCAN_NOT_RUNNING: {
    kind: 'user', exit: 65, http: 409, means: 'A cancel was asked for a scan that has already ended (finished or failed).',
    hint: 'Only a running or interrupted scan can be cancelled; list scans with `tocsin report --scans`.',
  },
  TOCSIN_SCAN_PLAN_INVALID: {
    kind: 'internal', exit: 65, http: 500, means: 'The stored plan of a scan does not fit the plan schema (damaged, or stored by another version); every problem is listed.',
    hint: 'The scan cannot be resumed; start a new scan with the same targets (`tocsin report --scans` lists the scans).',
  },
  TOCSIN_JOB_QUEUE: {
    kind: 'internal', exit: 69, http: 503, means: 'The PostgreSQL job queue of the scan workers (graphile_worker schema) cannot be opened, migrated or run.',
    hint: 'Check that the database is reachable and that its user may create the graphile_worker schema, then run the command again.',
  },
  TOCSIN_SCAN_NEEDS_STORE: {
    kind: 'user', exit: 64, http: 400, means: 'Resuming was asked for a scan that is not stored (--no-store).',
    hint: 'Drop --no-store to resume, or start a new scan.',
  },
  // The constituency registry (issue 8): `tocsin constituency` and `tocsin org`.
  TOCSIN_CONSTITUENCY_FILE_REJECTED: {
    kind: 'user', exit: 65, http: 400, means: 'A constituency file was refused whole (binary, not UTF-8, not the format, a required column missing); nothing of its source was changed.',
    hint: 'Fix the named file (or give --format); the other sources were imported. Rows with bad values are not this error: they are listed and the rest goes in.',
  },
  TOCSIN_ORG_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'No organisation in the constituency registry has the given name.',
    hint: 'List the organisations with `tocsin org list` (names are compared case-insensitively).',
  },
  TOCSIN_ORG_EXISTS: {
    kind: 'user', exit: 65, http: 409, means: 'An organisation with that name (compared case-insensitively) is in the registry already.',
    hint: 'Choose another name, or change the existing one with `tocsin org edit`.',
  },
  TOCSIN_ORG_ENTRY_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'The organisation has no such network, ASN, domain, contact or opt-out to remove.',
    hint: 'See what it holds with `tocsin org show NAME`.',
  },
  TOCSIN_FINDING_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'No finding has the given id.',
    hint: 'List findings with `tocsin findings --state all`.',
  },
  TOCSIN_FINDING_STATE: {
    kind: 'user', exit: 65, http: 409, means: 'The finding is not in a state that allows this change (closing a closed finding, reopening an open one).',
    hint: 'See its state and history with `tocsin finding show ID`.',
  },
  // Incident reports (issue 10 §5): `tocsin incident`, /api/incidents, the portal.
  TOCSIN_INCIDENT_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'No incident report has the given id (or it belongs to another organisation), or it has no such attachment.',
    hint: 'List reports with `tocsin incident list` (organisation accounts: /portal/incidents).',
  },
  TOCSIN_INCIDENT_INVALID: {
    kind: 'user', exit: 65, http: 400, means: 'An incident report, triage change or attachment is invalid; every bad field is named.',
    hint: 'Fix the named fields (stage 0 needs reporter name, role, phone and e-mail, summary, types, detectedAt with its zone, ongoing) and send it again.',
  },
  TOCSIN_INCIDENT_STATE: {
    kind: 'user', exit: 65, http: 409, means: 'The triage change is not an allowed transition (e.g. received straight to resolved).',
    hint: 'See the report with `tocsin incident show ID`; the message lists the allowed next states.',
  },
  TOCSIN_KB_UNKNOWN_BUILD: {
    kind: 'user', exit: 65, http: 400, means: 'The text given is not an Exchange build number.',
    hint: 'Give an Exchange build such as 15.1.2176.9 (major.minor.build[.revision]).',
  },
  TOCSIN_KB_DIR_INVALID: {
    kind: 'user', exit: 65, http: 400, means: 'A knowledge-base directory the user named (--kb-dir) is missing or its tables fail validation.',
    hint: 'Give a copy of data/exchange/ (builds.csv, cves.csv, cve-fixes.csv, cve-groups.csv); the problems are listed.',
  },
  TOCSIN_KB_DATA_INVALID: {
    kind: 'internal', exit: 70, http: 500, means: 'The shipped knowledge-base tables failed validation.',
    hint: 'The in-repo knowledge base failed validation; run `tocsin kb --verify`.',
  },
  // The forensics kit keeps its own exit codes (0 clean, 1 indicators, 2 error, 3 insufficient logs; README and
  // docs/forensics.md), the same through `tocsin forensics` and the standalone bundle: its errors all exit 2.
  TOCSIN_FORENSICS_INPUT: {
    kind: 'user', exit: 2, http: 400, means: 'A forensics input, option or output is unusable (missing path, bad IoC file, unwritable --output).',
    hint: 'Check the path, archive or IoC file named in the message.',
  },
  TOCSIN_FORENSICS_INTERNAL: {
    kind: 'internal', exit: 2, http: 500, means: 'A bug in the forensics kit (exit 2, the kit\'s error status, not 70).',
    hint: 'This is a bug: please report it with the command line and this message.',
  },
  TOCSIN_FEED_REJECTED: {
    kind: 'user', exit: 65, http: 400, means: 'A feed file has a report-level problem (a required column missing, no header, a DTD in XML, a broken archive); that file changed nothing.',
    hint: 'Fix or replace the named file (the message says what is wrong), then import it again; other files were imported.',
  },
  TOCSIN_FEED_FORMAT_UNKNOWN: {
    kind: 'user', exit: 65, http: 400, means: 'The format or Shadowserver report type of a feed file could not be told from its content or name.',
    hint: 'Give --format shadowserver|nmap-xml|masscan|zmap, and for Shadowserver files named otherwise than YYYY-MM-DD-TYPE-....csv, --report-type TYPE.',
  },
  TOCSIN_FEED_AUTH: {
    kind: 'user', exit: 77, http: 400, means: 'A feed API (Shadowserver reports API) refused the API key or the request signature.',
    hint: 'Check TOCSIN_SHADOWSERVER_KEY and TOCSIN_SHADOWSERVER_SECRET (the pair Shadowserver gave you) and TOCSIN_SHADOWSERVER_URL.',
  },
  TOCSIN_FEED_FETCH: {
    kind: 'internal', exit: 69, http: 503, means: 'A feed API listing or report download failed after its retries (HTTP 5xx, timeout, cut or oversized answer, bad JSON).',
    hint: 'Run `tocsin feeds fetch` again later: what was fetched is remembered and only the failed reports are tried again.',
  },
  // Warning campaigns (issue 9): `tocsin campaign`.
  TOCSIN_CAMPAIGN_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'No campaign has the given id, or the campaign has no message for the named organisation.',
    hint: 'List campaigns with `tocsin campaign list` and their organisations with `tocsin campaign status ID`.',
  },
  TOCSIN_CAMPAIGN_BUSY: {
    kind: 'user', exit: 75, http: 409, means: 'Another live process is sending the campaign (it holds the campaign\'s lock).',
    hint: 'Wait for the other `tocsin campaign send` to finish (or stop it), then run send again: nothing is sent twice.',
  },
  TOCSIN_CAMPAIGN_STATE: {
    kind: 'user', exit: 65, http: 409, means: 'The campaign or message is not in a state that allows this (send before approve, a cancelled campaign, resend of a message that is not uncertain or bounced).',
    hint: 'See `tocsin campaign status ID`; approve with `tocsin campaign approve ID`.',
  },
  TOCSIN_TEMPLATE_INVALID: {
    kind: 'user', exit: 65, http: 400, means: 'A message template is missing, malformed or names a value that does not exist, or a header would span lines.',
    hint: 'Fix the named file under data/templates/ (see data/templates/README.md); nothing was sent.',
  },
  TOCSIN_ACK_TOKEN_INVALID: {
    kind: 'user', exit: 65, http: 400, means: 'An acknowledgement token is malformed, forged, expired or names no message.',
    hint: 'Use the link from the warning as it was sent; an expired link needs a new warning or the analyst.',
  },
  // The SMTP adapter (src/platform/mail). SMTP outcomes (4xx, 5xx, drops) are values, not errors.
  TOCSIN_MAIL_MESSAGE_INVALID: {
    kind: 'internal', exit: 70, http: 500, means: 'A message handed to the SMTP adapter has a header value with a line break or control character, an invalid address, or is larger than the cap.',
    hint: 'Nothing was sent. Header values must be folded to one line before sending (toHeaderText); report this as a bug.',
  },
  TOCSIN_MAIL_UNCONFIGURED: {
    kind: 'user', exit: 78, http: 503, means: 'An invitation or password reset by e-mail was asked for, but TOCSIN_SMTP_URL, TOCSIN_MAIL_FROM or TOCSIN_WEB_URL is not set.',
    hint: 'Set the listed variables where `tocsin serve` runs (`tocsin check` validates them), or have an administrator run `tocsin user passwd EMAIL`.',
  },
  TOCSIN_MAIL_SINK: {
    kind: 'internal', exit: 69, http: 500, means: 'The local mail sink could not listen on 127.0.0.1 or write under TOCSIN_HOME/mail.',
    hint: 'Check that TOCSIN_HOME is writable and has free space.',
  },
  TOCSIN_MAILBOX_UNREADABLE: {
    kind: 'user', exit: 66, http: 400, means: '`tocsin mail ingest PATH`: PATH cannot be read, or is neither an mbox file nor a Maildir (a folder with cur/ and new/).',
    hint: 'Point it at the Maildir folder (the one holding cur/ and new/) or at the mbox file, readable by this user.',
  },
  TOCSIN_LAB_START: {
    kind: 'internal', exit: 69, http: 500, means: 'The lab (simulated Exchange estate) could not listen.',
    hint: 'The lab could not listen; is another lab running on the same port?',
  },
  TOCSIN_DETECTOR_INVALID: {
    kind: 'internal', exit: 70, http: 500, means: 'A detector failed its registration checks.',
    hint: 'A detector failed its registration checks; fix the named detector under src/products/ (see docs/detectors.md).',
  },
  TOCSIN_PACKAGE_BROKEN: {
    kind: 'internal', exit: 70, http: 500, means: 'The installed package is incomplete (its package.json or data files are missing).',
    hint: 'Reinstall tocsin (`npm ci` in a checkout, or install the package again).',
  },
  // Web accounts and access (issue 10 §2).
  TOCSIN_AUTH_REQUIRED: {
    kind: 'user', exit: 77, http: 401, means: 'A web API request carried no valid session cookie or API token (missing, expired, revoked, or the account is disabled).',
    hint: 'Log in with POST /api/session, or send `Authorization: Bearer TOKEN` (see `tocsin token create`).',
  },
  TOCSIN_AUTH_FAILED: {
    kind: 'user', exit: 77, http: 401, means: 'A login gave an unknown e-mail address, a wrong password, or a disabled account (the answer does not say which).',
    hint: 'Check the e-mail and password; an administrator can reset it with `tocsin user add` after `tocsin user disable`.',
  },
  TOCSIN_AUTH_THROTTLED: {
    kind: 'user', exit: 75, http: 429, means: 'Too many failed logins for this account or from this address in the window.',
    hint: 'Wait for the time in the Retry-After header, then try again.',
  },
  TOCSIN_FORBIDDEN: {
    kind: 'user', exit: 77, http: 403, means: 'The account may not do this: another organisation\'s data, or a role that lacks the right.',
    hint: 'Organisation accounts see only their own organisation; ask an analyst.',
  },
  TOCSIN_CSRF: {
    kind: 'user', exit: 77, http: 403, means: 'A state-changing request with a session cookie lacked the session\'s CSRF token (X-CSRF-Token header).',
    hint: 'Send the csrfToken returned by POST /api/session in the X-CSRF-Token header.',
  },
  TOCSIN_USER_EXISTS: {
    kind: 'user', exit: 65, http: 409, means: 'An account with that e-mail address (compared case-insensitively) exists already.',
    hint: 'See `tocsin user list`.',
  },
  TOCSIN_USER_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'No account has the given e-mail address.',
    hint: 'See `tocsin user list`.',
  },
  TOCSIN_ACCOUNT_TOKEN_INVALID: {
    kind: 'user', exit: 65, http: 400, means: 'An invitation or password-reset link is unknown, used already, expired, or its account is disabled.',
    hint: 'Ask for a new link on /reset (or ask an administrator to invite you again).',
  },
  TOCSIN_RESCAN_THROTTLED: {
    kind: 'user', exit: 75, http: 429, means: 'An organisation asked for a verification rescan while one is still pending, or used up its rescans for the day.',
    hint: 'Wait for the time in the Retry-After header (see GET /api/my/rescans for the pending one), then ask again.',
  },
  TOCSIN_NOT_FOUND: {
    kind: 'user', exit: 64, http: 404, means: 'The web API has no such route.',
    hint: 'See /api/openapi.json for the operations.',
  },
  TOCSIN_INTERNAL: {
    kind: 'internal', exit: 70, http: 500, means: 'A bug: an error no code describes.',
    hint: 'This is a bug: please report it with the command line and this message.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class TocsinError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly string[];
  constructor(code: ErrorCode, message: string, options?: { details?: readonly string[]; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TocsinError';
    this.code = code;
    this.details = options?.details ?? [];
  }
  get kind(): 'user' | 'internal' {
    return ERROR_CODES[this.code].kind;
  }
  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }
  get hint(): string {
    return ERROR_CODES[this.code].hint;
  }
  get httpStatus(): HttpStatus {
    return ERROR_CODES[this.code].http;
  }
}

export function isTocsinError(e: unknown): e is TocsinError {
  return e instanceof TocsinError;
}

/** The errno code of a system error (e.g. 'ENOSPC', 'EPIPE'), or a driver's error code, if any. */
export function errno(e: unknown): string | undefined {
  const code = e instanceof Error && 'code' in e ? e.code : undefined;
  return typeof code === 'string' ? code : undefined;
}
