/**
 * Socket errors as failure values ({kind, phase, code}): the engine judges failures by these fields,
 * never by message text.
 */
import type { FailurePhase, NetFailure, ProbeFailure } from '../../core/contracts/probe.js';

/** The errno-style code of a socket error, '' when it has none. */
export function errCode(err: Error): string {
  const c = (err as NodeJS.ErrnoException).code;
  return typeof c === 'string' ? c : '';
}

/** The failure kind a socket error means in `phase`. TLS-phase failures are 'tls-error' unless the address itself failed. */
export function kindOf(code: string, phase: FailurePhase): NetFailure {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    default:
      break;
  }
  if (phase === 'tls') return 'tls-error';
  if (phase === 'connect') return code === 'ECONNRESET' ? 'reset' : 'unreachable';
  return 'reset';
}

/** A socket error in `phase` as a failure value; `code` is set when the error carried one. */
export function failureOf(err: Error, phase: FailurePhase): ProbeFailure {
  const code = errCode(err);
  const detail = `${phase}: ${code !== '' ? code : err.message}`.slice(0, 200);
  const kind = kindOf(code, phase);
  return code === '' ? { kind, phase, detail } : { kind, phase, detail, code };
}
