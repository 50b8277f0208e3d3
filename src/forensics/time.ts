/** Timestamp reading for log lines (pure). Every result is ISO 8601 UTC or null. */

const ISO_AT_START = /^\s*"?'?(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,7})?(Z|[+-]\d{2}:?\d{2})?/;
const ISO_ANYWHERE = /(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,7})?(Z|[+-]\d{2}:?\d{2})?/;
const US_DATE = /(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2}):(\d{2})(?: ?([AP]M))?/i;
/** Day first with dots: Event Viewer in German, Norwegian, Russian, ... (`03.03.2021 07:20:11`). */
const DOTTED_DATE = /(\d{1,2})\.(\d{1,2})\.(\d{4}) (\d{1,2}):(\d{2}):(\d{2})/;

function build(m: RegExpExecArray): string | null {
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = frac === undefined ? 0 : Math.round(Number(`0${frac}`) * 1000);
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (zone !== undefined && zone !== 'Z') {
    const z = /([+-])(\d{2}):?(\d{2})/.exec(zone);
    if (z !== null) t -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
  }
  if (!Number.isFinite(t) || Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31) return null;
  return new Date(t).toISOString();
}

/** Parses an ISO-like timestamp (`2021-03-03T06:49:42.162Z`, `2021-03-05 03:06:27`); naive times are UTC. */
export function parseIsoTime(s: string): string | null {
  const m = ISO_AT_START.exec(s);
  return m === null ? null : build(m);
}

/**
 * Finds the first timestamp in a line: ISO anywhere, else Event Viewer style, US (`3/3/2021 6:49:51 AM`)
 * or day-first with dots (`03.03.2021 06:49:51`). Event Viewer writes local time; it is read as UTC.
 */
export function findTimeInLine(line: string): string | null {
  const head = line.length > 4096 ? line.slice(0, 4096) : line;
  const m = ISO_ANYWHERE.exec(head);
  if (m !== null) return build(m);
  const u = US_DATE.exec(head);
  if (u === null) {
    const d = DOTTED_DATE.exec(head);
    if (d === null) return null;
    const [, day, mo, y, h, mi, sec] = d;
    if (Number(mo) < 1 || Number(mo) > 12 || Number(day) < 1 || Number(day) > 31) return null;
    return new Date(Date.UTC(Number(y), Number(mo) - 1, Number(day), Number(h), Number(mi), Number(sec))).toISOString();
  }
  let h = Number(u[4]);
  const ap = u[7]?.toUpperCase();
  if (ap === 'PM' && h < 12) h += 12;
  if (ap === 'AM' && h === 12) h = 0;
  const t = Date.UTC(Number(u[3]), Number(u[1]) - 1, Number(u[2]), h, Number(u[5]), Number(u[6]));
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}
