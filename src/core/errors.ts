/**
 * One registry of error codes (fastify-style `TOCSIN_<AREA>_<WHAT>`).
 * Every error the user can see carries a stable code, says what to do next,
 * and is marked either a user mistake (`user`) or a bug/environment failure (`internal`).
 * Expected network outcomes (refused, timeout, TLS error) are NOT errors: they are values (see net).
 */
export const ERROR_CODES = {
  TOCSIN_CONFIG_INVALID: { kind: 'user', exit: 78, hint: 'Fix the listed settings; run `tocsin check` to validate without side effects.' },
  TOCSIN_TARGET_INVALID: { kind: 'user', exit: 64, hint: 'Fix or remove the named target; nothing was sent.' },
  TOCSIN_TARGET_OUT_OF_SCOPE: { kind: 'user', exit: 64, hint: 'The target is outside the configured scope or in an exclusion list.' },
  TOCSIN_ARG_INVALID: { kind: 'user', exit: 64, hint: 'See `tocsin <command> --help`.' },
  TOCSIN_DB_CONNECT: { kind: 'internal', exit: 69, hint: 'Check TOCSIN_DATABASE_URL or the embedded database under TOCSIN_HOME.' },
  TOCSIN_DB_MIGRATION: { kind: 'internal', exit: 70, hint: 'A schema migration failed; the database was left at the last good version.' },
  TOCSIN_DB_EMBEDDED_START: { kind: 'internal', exit: 69, hint: 'The embedded PostgreSQL did not start; see the log under TOCSIN_HOME/pg.log.' },
  // Storage failures caused by the environment (not bugs): each names what to do; a scan's also names its resume command.
  TOCSIN_HOME_UNUSABLE: { kind: 'user', exit: 73, hint: 'Set TOCSIN_HOME to a writable directory (it is created if missing), or set TOCSIN_DATABASE_URL.' },
  TOCSIN_DB_LOST: { kind: 'internal', exit: 69, hint: 'The database went away (server stopped or killed, `tocsin db stop`, TOCSIN_HOME removed); what was stored is kept.' },
  TOCSIN_DB_WRITE: { kind: 'internal', exit: 74, hint: 'The database could not write (read-only file system or an I/O error); what was stored before is kept.' },
  TOCSIN_DISK_FULL: { kind: 'internal', exit: 74, hint: 'Free space on the named file system (or move TOCSIN_HOME), then run the command again.' },
  TOCSIN_SCAN_BUSY: { kind: 'user', exit: 75, hint: 'Another live tocsin process is running this scan; wait for it or stop it (Ctrl+C), then resume.' },
  TOCSIN_SCAN_NOT_FOUND: { kind: 'user', exit: 64, hint: 'List scans with `tocsin report --scans`.' },
  TOCSIN_SCAN_NEEDS_STORE: { kind: 'user', exit: 64, hint: 'Drop --no-store to resume, or start a new scan.' },
  TOCSIN_KB_UNKNOWN_BUILD: { kind: 'user', exit: 65, hint: 'Give an Exchange build such as 15.1.2176.9 (major.minor.build[.revision]).' },
  TOCSIN_KB_DATA_INVALID: { kind: 'internal', exit: 70, hint: 'The in-repo knowledge base failed validation; run `tocsin kb --verify`.' },
  TOCSIN_INPUT_UNREADABLE: { kind: 'user', exit: 66, hint: 'Check the path and its permissions.' },
  TOCSIN_FORENSICS_INPUT: { kind: 'user', exit: 2, hint: 'Check the path, archive or IoC file named in the message.' },
  TOCSIN_LAB_START: { kind: 'internal', exit: 69, hint: 'The lab could not listen; is another lab running on the same port?' },
  TOCSIN_DETECTOR_INVALID: { kind: 'internal', exit: 70, hint: 'A detector failed its registration checks; fix the named detector under src/detectors/ (see docs/detectors.md).' },
  TOCSIN_INTERNAL: { kind: 'internal', exit: 70, hint: 'This is a bug: please report it with the command line and this message.' },
} as const satisfies Record<string, { kind: 'user' | 'internal'; exit: number; hint: string }>;

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
}

export function isTocsinError(e: unknown): e is TocsinError {
  return e instanceof TocsinError;
}

/** The errno code of a system error (e.g. 'ENOSPC', 'EPIPE'), or a driver's error code, if any. */
export function errno(e: unknown): string | undefined {
  const code = e instanceof Error && 'code' in e ? e.code : undefined;
  return typeof code === 'string' ? code : undefined;
}
