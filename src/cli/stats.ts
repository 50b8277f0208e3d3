/**
 * `tocsin stats [--campaign ID] [--by sector|org|cve] [--from DATE] [--to DATE] [--format table|json|csv]
 * [--chart FILE.svg|FILE.png]` (issue 9 §4): the patch curve. Thin: flags → src/services/stats.ts → print.
 * Folds what is new first (like `tocsin findings`), so the curve includes the latest scans.
 * Group names (sectors, organisations, CVE ids from feeds) are hostile: sanitised in the table, escaped by JSON,
 * formula-safe in CSV, escaped in the SVG.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { parseIntFlag } from './args.js';
import { csvRow } from '../core/csv.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { foldFindings } from '../services/findings.js';
import { computeStats, renderStatsChart, type StatsReport } from '../services/stats.js';
import { GROUP_BY, SERIES, parseDay, survivalAt, type GroupBy } from '../stats/index.js';

type Format = 'table' | 'json' | 'csv';
const FORMATS: readonly Format[] = ['table', 'json', 'csv'];

interface StatsFlags {
  campaign?: string;
  by?: string;
  from?: string;
  to?: string;
  format?: string;
  chart?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('stats')
    .description('the patch curve: exposed / notified / acknowledged / patched / compromised per day, time to patch, survival per sector, campaign burn-down')
    .option('--campaign <id>', 'only the findings this campaign warned about, with its burn-down')
    .option('--by <key>', 'sector | org | cve: one series (and time to patch, survival) per group')
    .option('--from <date>', 'first day (YYYY-MM-DD, UTC; default: the first detection); time to patch and survival then count only findings detected from that day')
    .option('--to <date>', 'last day (YYYY-MM-DD, UTC; default: today)')
    .option('--format <format>', 'table | json | csv (csv: the daily series) (default table)')
    .option('--chart <file>', 'also draw the curves to FILE.svg or FILE.png')
    .action(async (flags: StatsFlags) => {
      process.exitCode = await statsCommand(ctx, flags);
    });
}

const quoted = (s: string): string => JSON.stringify(sanitiseText(s, { max: 40 }));

function dayFlag(name: string, raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const d = parseDay(raw.trim());
  if (d === null) throw new TocsinError('TOCSIN_ARG_INVALID', `${name} must be a day (YYYY-MM-DD), got ${quoted(raw)}`);
  return d;
}

function chartKind(file: string | undefined): 'svg' | 'png' | null {
  if (file === undefined) return null;
  const lower = file.toLowerCase();
  if (lower.endsWith('.svg')) return 'svg';
  if (lower.endsWith('.png')) return 'png';
  throw new TocsinError('TOCSIN_ARG_INVALID', `--chart must name a .svg or .png file, got ${quoted(file)}`);
}

export async function statsCommand(ctx: CliContext, flags: StatsFlags): Promise<number> {
  const format = FORMATS.find((f) => f === (flags.format ?? 'table'));
  if (format === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--format must be one of ${FORMATS.join(', ')}, got ${quoted(flags.format ?? '')}`);
  let by: GroupBy | null = null;
  if (flags.by !== undefined) {
    const b = GROUP_BY.find((g) => g === flags.by);
    if (b === undefined) throw new TocsinError('TOCSIN_ARG_INVALID', `--by must be one of ${GROUP_BY.join(', ')}, got ${quoted(flags.by)}`);
    by = b;
  }
  const campaignId = parseIntFlag('--campaign', flags.campaign, 1, Number.MAX_SAFE_INTEGER) ?? null;
  const from = dayFlag('--from', flags.from);
  const to = dayFlag('--to', flags.to);
  if (from !== null && to !== null && from > to) throw new TocsinError('TOCSIN_ARG_INVALID', `--from ${from} is after --to ${to}`);
  const chart = chartKind(flags.chart);

  const database = await openDatabase(ctx.config());
  let report: StatsReport;
  try {
    const fold = await foldFindings(database.db);
    ctx.stderr.write(`tocsin: findings folded (${fold.evidence} new piece(s) of evidence; ${fold.ms} ms)\n`);
    report = await computeStats(database.db, { by, campaignId, from, to });
  } finally {
    await database.close();
  }
  if (chart !== null && flags.chart !== undefined) {
    const out = await renderStatsChart(report, chart);
    try {
      await writeFile(flags.chart, out);
    } catch (e) {
      throw new TocsinError('TOCSIN_OUTPUT_UNWRITABLE', `cannot write --chart ${flags.chart}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    ctx.stderr.write(`tocsin: chart written to ${flags.chart}\n`);
  }
  ctx.stdout.write(renderStats(report, format));
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// Rendering (pure)

export const CSV_COLUMNS = ['group', 'day', ...SERIES] as const;

export function renderStats(r: StatsReport, format: Format): string {
  if (format === 'json') return `${JSON.stringify(r, null, 2)}\n`;
  if (format === 'csv') return [CSV_COLUMNS, ...r.series.map((p) => [p.group, p.day, ...SERIES.map((s) => p[s])])].map((row) => `${csvRow(row)}\r\n`).join('');
  return statsTable(r);
}

const cell = (s: string, w: number): string => {
  const t = sanitiseText(s, { max: w });
  return t.length >= w ? t : t + ' '.repeat(w - t.length);
};
const num = (n: number | null, w: number): string => (n === null ? '-' : String(n)).padStart(w);
const pct = (x: number): string => `${Math.round(x * 100)}%`.padStart(6);
const SURVIVAL_DAYS = [7, 14, 30, 60, 90] as const;

function statsTable(r: StatsReport): string {
  const lines: string[] = [];
  const gw = Math.min(32, Math.max(8, ...r.series.map((p) => p.group.length), ...r.survival.map((c) => c.group.length)));
  lines.push(`Patch curve ${r.from} .. ${r.to} (UTC days; open findings counted as unpatched up to ${r.end})`);
  if (r.campaign !== null) {
    const c = r.campaign;
    lines.push(`Campaign ${c.id} ${JSON.stringify(sanitiseText(c.name, { max: 60 }))} (${c.state}, created ${c.createdAt}): ` +
      `${c.findings} finding(s), ${c.messagesSent} message(s) accepted`);
  }
  lines.push('');
  lines.push(`${cell('group', gw)}  day         ${SERIES.map((s) => s.padStart(13)).join('')}`);
  for (const p of r.series) lines.push(`${cell(p.group, gw)}  ${p.day}  ${SERIES.map((s) => num(p[s], 13)).join('')}`);
  if (r.series.length === 0) lines.push('(no findings)');
  lines.push('');
  lines.push('Time to patch (days; median and p90 over the patched findings; survival median over all, open ones censored)');
  lines.push(`${cell('group', gw)}  from        patched  censored    median       p90  surv.median`);
  for (const t of r.timeToPatch) {
    lines.push(`${cell(t.group, gw)}  ${t.basis.padEnd(10)}${num(t.patched, 9)}${num(t.censored, 10)}${num(t.medianDays, 10)}${num(t.p90Days, 10)}${num(t.survivalMedianDays, 13)}`);
  }
  if (r.timeToPatch.length === 0) lines.push('(nothing to time)');
  lines.push('');
  lines.push(`Still unpatched after N days since first detection, per ${r.by ?? 'sector'} (Kaplan-Meier)`);
  lines.push(`${cell(r.by ?? 'sector', gw)}  findings${SURVIVAL_DAYS.map((d) => `${d}d`.padStart(6)).join('')}`);
  for (const c of r.survival) lines.push(`${cell(c.group, gw)}  ${num(c.findings, 8)}${SURVIVAL_DAYS.map((d) => pct(survivalAt(c, d))).join('')}`);
  if (r.survival.length === 0) lines.push('(no findings)');
  if (r.campaign !== null) {
    lines.push('');
    lines.push('Burn-down (the campaign\'s findings at the end of each day)');
    lines.push('day         still open  patched  notified  acknowledged');
    for (const p of r.campaign.points) lines.push(`${p.day}  ${num(p.open, 10)}${num(p.patched, 9)}${num(p.notified, 10)}${num(p.acknowledged, 14)}`);
  }
  return `${lines.join('\n')}\n`;
}
