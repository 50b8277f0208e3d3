/**
 * The patch curve (issue 9 §4): exposed / notified / acknowledged / patched / compromised per day, time to patch
 * (median, p90, survival median) from first detection and from first successful warning, survival per sector,
 * and a campaign's burn-down; as a report and as a chart. The database aggregates (platform/db/stats-store.ts),
 * src/stats computes, platform/charts draws.
 * CONTRACT: fold first (`foldFindings`) when the findings must include the latest scans; this only reads.
 */
import type { Kysely } from 'kysely';
import { TocsinError } from '../core/errors.js';
import type { DbSchema } from '../platform/db/schema.js';
import { aggregateStats, campaignInfo, type StatsScope } from '../platform/db/stats-store.js';
import type { ChartInput, ChartPanel, ChartPoint } from '../platform/charts/index.js';
import {
  SERIES, addDays, dailySeries, dayOf, startOfDay, survivalCurves, timeToPatch, totalPerDay,
  type DailyPoint, type GroupBy, type SurvivalCurve, type TimeToPatch,
} from '../stats/index.js';

export interface StatsOptions {
  readonly by?: GroupBy | null;
  readonly campaignId?: number | null;
  /** First day (YYYY-MM-DD, UTC) of the series; time to patch and survival count only findings first detected from then on. */
  readonly from?: string | null;
  /** Last day (default: today). */
  readonly to?: string | null;
  /** The clock (default: the real time): open findings are censored at min(now, end of `to`). */
  readonly now?: Date;
}

export interface BurndownPoint {
  readonly day: string;
  /** The campaign's findings still open (exposed + compromised) at the end of the day. */
  readonly open: number;
  readonly patched: number;
  readonly notified: number;
  readonly acknowledged: number;
}

export interface CampaignBurndown {
  readonly id: number;
  readonly name: string;
  readonly state: string;
  readonly createdAt: string;
  readonly findings: number;
  readonly messagesSent: number;
  readonly points: readonly BurndownPoint[];
}

export interface StatsReport {
  readonly from: string;
  readonly to: string;
  /** Open findings are censored at this time. */
  readonly end: string;
  readonly by: GroupBy | null;
  readonly series: readonly DailyPoint[];
  /** By group (or `all`), from detection then from warning. */
  readonly timeToPatch: readonly TimeToPatch[];
  /** Per sector (or per the --by group when one is given), from detection. */
  readonly survival: readonly SurvivalCurve[];
  readonly campaign: CampaignBurndown | null;
}

export async function computeStats(db: Kysely<DbSchema>, opts: StatsOptions = {}): Promise<StatsReport> {
  const now = opts.now ?? new Date();
  const by = opts.by ?? null;
  const campaignId = opts.campaignId ?? null;
  const campaign = campaignId === null ? null : await campaignInfo(db, campaignId);
  if (campaignId !== null && campaign === null) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `no campaign ${campaignId}`);
  const to = opts.to ?? dayOf(now);
  const scope: StatsScope = { by, campaignId, detectedFrom: opts.from == null ? null : startOfDay(opts.from) };
  if (opts.from != null && opts.from > to) throw new TocsinError('TOCSIN_ARG_INVALID', `--from ${opts.from} is after --to ${to}`);
  const endOfTo = startOfDay(addDays(to, 1));
  const end = endOfTo < now ? endOfTo : now;
  const defaultFrom = campaign === null ? null : dayOf(campaign.createdAt);
  const agg = await aggregateStats(db, scope, { from: opts.from ?? (defaultFrom !== null && defaultFrom <= to ? defaultFrom : null), to, end }, by ?? 'sector');
  const from = agg.from;
  const series = dailySeries(agg.deltas, from, to);
  const ttp = [...timeToPatch('detection', agg.detection), ...timeToPatch('warning', agg.warning)];
  const survival = survivalCurves(agg.survival);

  let burndown: CampaignBurndown | null = null;
  if (campaign !== null) {
    const totals = by === null ? series : totalPerDay(series);
    burndown = {
      id: campaign.id, name: campaign.name, state: campaign.state, createdAt: campaign.createdAt.toISOString(),
      findings: campaign.findings, messagesSent: campaign.sent,
      points: totals.map((p) => ({ day: p.day, open: p.exposed + p.compromised, patched: p.patched, notified: p.notified, acknowledged: p.acknowledged })),
    };
  }
  return { from, to, end: end.toISOString(), by, series, timeToPatch: ttp, survival, campaign: burndown };
}

/** Exposed red, warnings orange and purple, patched green, compromised black: the same in every chart. */
const SERIES_COLORS: ReadonlyArray<readonly [string, string]> = [
  ['exposed', '#d62728'], ['notified', '#ff7f0e'], ['acknowledged', '#9467bd'], ['patched', '#2ca02c'], ['compromised', '#111111'],
];

/** At most this many groups get a line of their own in a chart; the rest are summed as `(other)`. */
const CHART_GROUPS = 10;

/** The biggest groups (by peak value), the others merged into `(other)`. */
function topLines(points: readonly ChartPoint[]): ChartPoint[] {
  const peak = new Map<string, number>();
  for (const p of points) peak.set(p.line, Math.max(peak.get(p.line) ?? 0, p.y));
  if (peak.size <= CHART_GROUPS) return [...points];
  const keep = new Set([...peak.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, CHART_GROUPS - 1).map(([g]) => g));
  const other = new Map<string | number, number>();
  const out: ChartPoint[] = [];
  for (const p of points) {
    if (keep.has(p.line)) out.push(p);
    else other.set(p.x, (other.get(p.x) ?? 0) + p.y);
  }
  for (const [x, y] of other) out.push({ x, y, line: '(other)' });
  return out;
}

/** What the chart shows: the daily series (or exposed per group), the campaign's burn-down, survival per group. */
export function chartOf(r: StatsReport): ChartInput {
  const panels: ChartPanel[] = [];
  if (r.by === null) {
    panels.push({
      title: `Findings per day, ${r.from} to ${r.to}`, xTitle: 'day (UTC)', yTitle: 'findings', x: 'day', colors: SERIES_COLORS,
      points: r.series.flatMap((p) => SERIES.map((s) => ({ x: p.day, y: p[s], line: s }))),
    });
  } else {
    panels.push({
      title: `Exposed findings per ${r.by}, ${r.from} to ${r.to}`, xTitle: 'day (UTC)', yTitle: 'open findings', x: 'day',
      points: topLines(r.series.map((p) => ({ x: p.day, y: p.exposed, line: p.group }))),
    });
  }
  if (r.campaign !== null) {
    const c = r.campaign;
    panels.push({
      title: `Burn-down of campaign ${c.id} (${c.name})`, xTitle: 'day (UTC)', yTitle: 'findings', x: 'day',
      colors: [['still open', '#d62728'], ['patched', '#2ca02c']],
      points: c.points.flatMap((p) => [{ x: p.day, y: p.open, line: 'still open' }, { x: p.day, y: p.patched, line: 'patched' }]),
    });
  }
  const curves = [...r.survival].sort((a, b) => b.findings - a.findings || (a.group < b.group ? -1 : 1)).slice(0, CHART_GROUPS);
  if (curves.length > 0) {
    panels.push({
      title: `Share still unpatched by days since first detection, per ${r.by ?? 'sector'}`, xTitle: 'days since first detection',
      yTitle: 'still unpatched', x: 'number', step: true, share: true,
      points: curves.flatMap((c) => c.points.map((p) => ({ x: p.days, y: p.survival, line: `${c.group} (${c.findings})` }))),
    });
  }
  return { title: r.campaign === null ? 'Tocsin: the patch curve' : `Tocsin: the patch curve of campaign ${r.campaign.id}`, panels };
}

/**
 * The chart of a report as SVG text or PNG bytes. The chart libraries (vega, vega-lite, resvg's native binding) are
 * loaded here, on first use: every other command starts without them.
 */
export async function renderStatsChart(r: StatsReport, kind: 'svg' | 'png'): Promise<string | Buffer> {
  const { renderSvg, svgToPng } = await import('../platform/charts/index.js');
  const svg = await renderSvg(chartOf(r));
  return kind === 'svg' ? svg : svgToPng(svg);
}
