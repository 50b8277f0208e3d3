/** Calendar days (UTC, YYYY-MM-DD) for the daily series. Pure. */

const DAY_MS = 86_400_000;
const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The UTC day of a time. */
export function dayOf(t: Date): string {
  return t.toISOString().slice(0, 10);
}

/** A valid YYYY-MM-DD (a real calendar day), or null. */
export function parseDay(text: string): string | null {
  const m = DAY_RE.exec(text);
  if (m === null) return null;
  const d = new Date(`${text}T00:00:00.000Z`);
  return Number.isNaN(d.getTime()) || dayOf(d) !== text ? null : text;
}

/** Midnight UTC at the start of a day. */
export function startOfDay(day: string): Date {
  return new Date(`${day}T00:00:00.000Z`);
}

export function addDays(day: string, n: number): string {
  return dayOf(new Date(startOfDay(day).getTime() + n * DAY_MS));
}

/** Every day from `from` to `to`, both included (empty when to < from). */
export function daysFromTo(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}
