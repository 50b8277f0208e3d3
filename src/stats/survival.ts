/**
 * Time to patch (issue 9 §4): quantiles over the patched findings and a Kaplan-Meier survival curve over all of
 * them, where a finding still open (or closed for another reason than patched) is censored: it counts as "not
 * patched for at least this long", never as patched. Inputs are counts per duration (the store's GROUP BY), so a
 * million findings are a few thousand rows here. Pure.
 */
import type { Basis, DurationCount, SurvivalCurve, SurvivalPoint, TimeToPatch } from './types.js';

const MINUTES_PER_DAY = 1440;

/** Days with 2 decimals (a quarter of an hour's precision is plenty for a patch curve). */
export function minutesToDays(minutes: number): number {
  return Math.round((minutes / MINUTES_PER_DAY) * 100) / 100;
}

/**
 * Nearest-rank quantile over weighted values: the smallest value whose cumulative count reaches ceil(q * n).
 * Always a value some finding really took (no interpolation between two findings). Null for no values.
 */
export function weightedQuantile(values: ReadonlyArray<{ readonly value: number; readonly count: number }>, q: number): number | null {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
  const sorted = values.filter((v) => v.count > 0).sort((a, b) => a.value - b.value);
  const n = sorted.reduce((s, v) => s + v.count, 0);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (const v of sorted) {
    seen += v.count;
    if (seen >= rank) return v.value;
  }
  return sorted[sorted.length - 1]!.value;
}

/** Kaplan-Meier over one group's durations. At a tie, the patches come before the censorings (the usual convention). */
export function survivalCurve(group: string, counts: readonly DurationCount[]): SurvivalCurve {
  const byTime = new Map<number, { patched: number; censored: number }>();
  let total = 0;
  for (const c of counts) {
    if (c.group !== group) continue;
    const t = byTime.get(c.minutes) ?? { patched: 0, censored: 0 };
    t.patched += c.patched;
    t.censored += c.censored;
    byTime.set(c.minutes, t);
    total += c.patched + c.censored;
  }
  const points: SurvivalPoint[] = [{ days: 0, survival: 1, atRisk: total, patched: 0, censored: 0 }];
  let atRisk = total;
  let s = 1;
  for (const [minutes, t] of [...byTime.entries()].sort(([a], [b]) => a - b)) {
    if (atRisk > 0 && t.patched > 0) s *= 1 - t.patched / atRisk;
    points.push({ days: minutesToDays(minutes), survival: Math.round(s * 1e6) / 1e6, atRisk, patched: t.patched, censored: t.censored });
    atRisk -= t.patched + t.censored;
  }
  return { group, findings: total, points };
}

/** The first time the curve is at or below one half (the median survival); null while it is above. */
export function survivalMedian(curve: SurvivalCurve): number | null {
  return curve.points.find((p) => p.survival <= 0.5 + 1e-12 && p.patched > 0)?.days ?? null;
}

/** Median and p90 of the patched findings' times, and the survival median over all, for every group in the counts. */
export function timeToPatch(basis: Basis, counts: readonly DurationCount[]): TimeToPatch[] {
  const groups = [...new Set(counts.map((c) => c.group))].sort();
  return groups.map((group) => {
    const mine = counts.filter((c) => c.group === group);
    const patchedValues = mine.map((c) => ({ value: c.minutes, count: c.patched }));
    const median = weightedQuantile(patchedValues, 0.5);
    const p90 = weightedQuantile(patchedValues, 0.9);
    return {
      group,
      basis,
      patched: mine.reduce((s, c) => s + c.patched, 0),
      censored: mine.reduce((s, c) => s + c.censored, 0),
      medianDays: median === null ? null : minutesToDays(median),
      p90Days: p90 === null ? null : minutesToDays(p90),
      survivalMedianDays: survivalMedian(survivalCurve(group, mine)),
    };
  });
}

/** One curve per group in the counts, groups in name order. */
export function survivalCurves(counts: readonly DurationCount[]): SurvivalCurve[] {
  return [...new Set(counts.map((c) => c.group))].sort().map((g) => survivalCurve(g, counts));
}

/** The share still unpatched after `days` (the curve is a step function: the last step at or before `days`). */
export function survivalAt(curve: SurvivalCurve, days: number): number {
  let s = 1;
  for (const p of curve.points) {
    if (p.days > days) break;
    s = p.survival;
  }
  return s;
}
