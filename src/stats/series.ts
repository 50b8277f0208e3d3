/** Daily series from per-day changes (the store sums the event history per day; this makes the running totals). Pure. */
import { daysFromTo } from './days.js';
import { SERIES, type DailyPoint, type DayDelta, type SeriesName } from './types.js';

type Counts = Record<SeriesName, number>;

const zero = (): Counts => ({ exposed: 0, notified: 0, acknowledged: 0, patched: 0, compromised: 0 });

/**
 * One point per group and day from `from` to `to` (both included): the running sum of the deltas. Deltas dated
 * before `from` make the first day's starting level (the store folds them onto `from` already; either is right);
 * deltas after `to` are ignored. Groups in name order; a group with no deltas at all is absent.
 */
export function dailySeries(deltas: readonly DayDelta[], from: string, to: string): DailyPoint[] {
  const byGroup = new Map<string, Map<string, Counts>>();
  for (const d of deltas) {
    if (d.day > to) continue;
    const day = d.day < from ? from : d.day;
    let days = byGroup.get(d.group);
    if (days === undefined) byGroup.set(d.group, (days = new Map()));
    let c = days.get(day);
    if (c === undefined) days.set(day, (c = zero()));
    c[d.series] += d.delta;
  }
  const out: DailyPoint[] = [];
  const calendar = daysFromTo(from, to);
  for (const group of [...byGroup.keys()].sort()) {
    const days = byGroup.get(group)!;
    const run = zero();
    for (const day of calendar) {
      const c = days.get(day);
      if (c !== undefined) for (const s of SERIES) run[s] += c[s];
      out.push({ group, day, ...run });
    }
  }
  return out;
}

/** The totals over all groups, per day (for a chart of a grouped run, or a campaign's burn-down). */
export function totalPerDay(points: readonly DailyPoint[]): DailyPoint[] {
  const byDay = new Map<string, Counts>();
  for (const p of points) {
    let c = byDay.get(p.day);
    if (c === undefined) byDay.set(p.day, (c = zero()));
    for (const s of SERIES) c[s] += p[s];
  }
  return [...byDay.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([day, c]) => ({ group: 'all', day, ...c }));
}
