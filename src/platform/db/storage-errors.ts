/**
 * Storage failures as coded errors. A scan that loses its database (the server killed, `tocsin db stop`,
 * TOCSIN_HOME deleted), or whose database cannot write (full disk, read-only file system), used to die
 * with TOCSIN_INTERNAL, exit 70 and a stack trace. These are the environment's doing, not bugs: each gets
 * a code, and a scan's message names the scan and the command that finishes it.
 *
 * Classification uses what node-postgres gives: a server error's SQLSTATE (`code`, 5 characters), a socket
 * error's errno, or the messages of a connection that ended. Anything else is returned unchanged (a real
 * bug stays TOCSIN_INTERNAL).
 */
import { existsSync } from 'node:fs';
import { errno, TocsinError, isTocsinError, type ErrorCode } from '../../core/errors.js';

const LOST_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
const LOST_MESSAGES = [
  /Connection terminated/i,
  /connection error and is not queryable/i,
  /timeout exceeded when trying to connect/i,
  /terminating connection/i,
  /the database system is (shutting down|starting up|in recovery mode)/i,
  /server closed the connection unexpectedly/i,
  /Client was closed and is not queryable/i,
];

/** The storage code for `e`, or null when it is not a storage failure we recognise. */
export function storageErrorCode(e: unknown): ErrorCode | null {
  if (isTocsinError(e)) {
    return e.code === 'TOCSIN_DB_LOST' || e.code === 'TOCSIN_DB_WRITE' || e.code === 'TOCSIN_DISK_FULL' || e.code === 'TOCSIN_DB_CONNECT' ? e.code : null;
  }
  if (!(e instanceof Error)) return null;
  const text = e.message;
  const code = errno(e);
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    // SQLSTATE: https://www.postgresql.org/docs/current/errcodes-appendix.html
    if (code === '53100' || /No space left on device/i.test(text)) return 'TOCSIN_DISK_FULL';
    if (code === '25006' || code === '58030' || code.startsWith('XX') || /Read-only file system/i.test(text)) return 'TOCSIN_DB_WRITE';
    if (code.startsWith('08') || code.startsWith('57P') || code === '3D000') return 'TOCSIN_DB_LOST';
    return null;
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'TOCSIN_DISK_FULL';
  if (code === 'EROFS' || code === 'EIO') return 'TOCSIN_DB_WRITE';
  if (code !== undefined && LOST_ERRNO.has(code)) return 'TOCSIN_DB_LOST';
  if (LOST_MESSAGES.some((re) => re.test(text))) return 'TOCSIN_DB_LOST';
  return null;
}

export interface ScanStorageContext {
  readonly scanId: string | null;
  /** TOCSIN_HOME when the database is the embedded one (to say when it was deleted), else null. */
  readonly embeddedHome: string | null;
}

/**
 * `e` as a coded storage error naming the scan and its resume command, or `e` unchanged when it is not a
 * storage failure. Used by `tocsin scan` around everything that touches the store.
 */
export function scanStorageError(e: unknown, ctx: ScanStorageContext): unknown {
  const code = storageErrorCode(e);
  if (code === null) return e;
  const cause = e instanceof Error ? e.message : String(e);
  const what =
    code === 'TOCSIN_DISK_FULL' ? 'the disk is full'
    : code === 'TOCSIN_DB_WRITE' ? 'the database cannot write'
    : code === 'TOCSIN_DB_CONNECT' ? 'cannot connect to the database'
    : 'the database connection was lost';
  const details: string[] = [];
  if (isTocsinError(e)) details.push(...e.details);
  if (ctx.embeddedHome !== null && !existsSync(ctx.embeddedHome)) {
    details.push(`TOCSIN_HOME=${ctx.embeddedHome} no longer exists (deleted while the scan ran?): the embedded database went with it`);
  } else if ((code === 'TOCSIN_DISK_FULL' || code === 'TOCSIN_DB_WRITE') && ctx.embeddedHome !== null) {
    details.push(`the embedded database is in ${ctx.embeddedHome}/pg (TOCSIN_HOME): free space there, or make it writable`);
  } else if (code === 'TOCSIN_DB_LOST' && ctx.embeddedHome !== null) {
    details.push('the embedded PostgreSQL stopped (`tocsin db stop`, or its server was killed); the next command starts it again');
  }
  const head = ctx.scanId === null ? `${what}: ${cause}` : `scan ${ctx.scanId} stopped: ${what} (${cause}); what was stored is kept`;
  const message = ctx.scanId === null ? head : `${head}; resume with: tocsin scan --resume ${ctx.scanId}`;
  return new TocsinError(code, message, { details, cause: e });
}
