/**
 * `--ports` parsing. Pure.
 *
 * Each entry is `PORT` or `PORT/PROTO` with PROTO one of `tls` (alias `https`) or `http`.
 * A bare port is probed as:
 *   - TLS for 443 (and the other usual HTTPS ports 4443, 8443, 9443),
 *   - plain HTTP for 80 and 8080,
 *   - otherwise `auto`: TLS first, and plain HTTP on the same port if the peer does not speak TLS
 *     (HTTPS first because Exchange front ends almost always answer on TLS).
 * Duplicates (same port) are refused: one record per (ip, port) is the JSONL contract.
 */
import { TocsinError } from '../core/errors.js';

export type PortMode = 'tls' | 'http' | 'auto';

export interface PortSpec {
  readonly port: number;
  readonly mode: PortMode;
}

const TLS_PORTS = new Set([443, 4443, 8443, 9443]);
const HTTP_PORTS = new Set([80, 8080]);

export const DEFAULT_PORTS: readonly PortSpec[] = [{ port: 443, mode: 'tls' }];

/** Parse "443,80/http,8443/tls". Throws TOCSIN_ARG_INVALID naming the bad entry. */
export function parsePorts(text: string): readonly PortSpec[] {
  const out: PortSpec[] = [];
  const seen = new Set<number>();
  const entries = text.split(',');
  for (const [i, raw] of entries.entries()) {
    const item = raw.trim().toLowerCase();
    // `443,,80` or `443,` is a typo (a port left out?), not a shorter list: say which entry is empty.
    if (item === '') {
      if (text.trim() === '') break;
      const shown = text.length > 60 ? `${text.slice(0, 59)}…` : text;
      throw new TocsinError('TOCSIN_ARG_INVALID', `--ports: entry ${i + 1} of ${JSON.stringify(shown)} is empty (separate ports with single commas, e.g. 443,80)`);
    }
    const m = /^(\d{1,5})(?:\/(tls|https|http))?$/.exec(item);
    const port = m ? Number(m[1]) : NaN;
    if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TocsinError('TOCSIN_ARG_INVALID', `--ports: ${JSON.stringify(raw.trim())} is not a port (expected 1..65535, optionally /tls or /http)`);
    }
    if (seen.has(port)) throw new TocsinError('TOCSIN_ARG_INVALID', `--ports: port ${port} is listed twice`);
    seen.add(port);
    const proto = m[2];
    const mode: PortMode = proto === 'tls' || proto === 'https' ? 'tls'
      : proto === 'http' ? 'http'
        : TLS_PORTS.has(port) ? 'tls' : HTTP_PORTS.has(port) ? 'http' : 'auto';
    out.push({ port, mode });
  }
  if (out.length === 0) throw new TocsinError('TOCSIN_ARG_INVALID', '--ports: no port given');
  return out;
}

/** Canonical text form, stored with the scan so a resume reuses exactly the same plan. */
export function formatPorts(ports: readonly PortSpec[]): string {
  return ports.map((p) => (p.mode === 'auto' ? String(p.port) : `${p.port}/${p.mode}`)).join(',');
}
