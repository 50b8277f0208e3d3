/** Field readers shared by the feed formats. Pure; each returns null for "not a valid value". */
import { normalizeIp } from '../core/ip.js';

/** A canonical address, or null (surrounding spaces and IPv6 brackets tolerated). */
export function readIp(text: string | undefined): string | null {
  if (text === undefined) return null;
  let t = text.trim();
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  if (t === '' || t.length > 64) return null;
  return normalizeIp(t);
}

/** A TCP/UDP port 0-65535 written in decimal, or null. */
export function readPort(text: string | undefined): number | null {
  const t = (text ?? '').trim();
  if (!/^\d{1,5}$/.test(t)) return null;
  const n = Number(t);
  return n <= 65535 ? n : null;
}

/**
 * A feed time as ISO: "2021-05-14 00:11:30" (Shadowserver, UTC), ISO 8601 with a zone, or Unix seconds
 * (masscan, zmap). Null when unreadable.
 */
export function readTime(text: string | undefined): string | null {
  const t = (text ?? '').trim();
  if (t === '') return null;
  if (/^\d{9,11}$/.test(t)) return new Date(Number(t) * 1000).toISOString();
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(t);
  if (m === null) return null;
  const zone = m[4] === undefined ? 'Z' : m[4] === 'Z' ? 'Z' : m[4].length === 3 ? `${m[4]}:00` : m[4].includes(':') ? m[4] : `${m[4].slice(0, 3)}:${m[4].slice(3)}`;
  const ms = Date.parse(`${m[1]}T${m[2]}${m[3] ?? ''}${zone}`);
  if (!Number.isFinite(ms)) return null;
  const iso = new Date(ms).toISOString();
  // Date.parse rolls 2021-02-30 over to March: refuse what does not read back.
  return m[4] === undefined && !iso.startsWith(`${m[1]}T${m[2]}`) ? null : iso;
}

/** A calendar date YYYY-MM-DD that exists, or null. */
export function readDate(text: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return null;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().startsWith(text) ? text : null;
}

/** A host name as reported (trimmed, at most 253 characters), or null when empty. */
export function readHostname(text: string | undefined): string | null {
  const t = (text ?? '').trim();
  return t === '' ? null : t.slice(0, 253);
}
