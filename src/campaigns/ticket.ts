/**
 * Ticket numbers, mailgen style: `YYYYMMDD-NNNNNNNN`, the UTC date the campaign was created and a number from a
 * database sequence (unique across campaigns; 8 digits, so up to 10^8 tickets a day). Pure.
 */
export const TICKET = /^(\d{4})(\d{2})(\d{2})-(\d{8})$/;

export function formatTicket(at: Date, n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`ticket number must be a whole number >= 0 (got ${n})`);
  const day = at.toISOString().slice(0, 10).replace(/-/g, '');
  return `${day}-${String(n % 100_000_000).padStart(8, '0')}`;
}

export function isTicket(s: string): boolean {
  const m = TICKET.exec(s);
  if (m === null) return false;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === `${m[1]}-${m[2]}-${m[3]}`;
}

/** Ticket numbers found in a text (a reply's subject), in order. */
export function ticketsIn(text: string): string[] {
  return [...text.matchAll(/\b(\d{8}-\d{8})\b/g)].map((m) => m[1]!).filter(isTicket);
}
