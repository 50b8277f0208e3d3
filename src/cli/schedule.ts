/**
 * `tocsin schedule list|add|remove|runs|run`: recurring rescans (issue 11 §4). Thin: parse → src/services/scheduler.ts
 * → print. `run` is the daemon (`--once` for one tick, e.g. from cron): it ticks every `--interval`, scanning what the
 * schedules' cadence makes due, folding findings and sending follow-ups through the configured mailer
 * (TOCSIN_SMTP_URL/TOCSIN_MAIL_FROM, or `--local-sink`). Ctrl+C/SIGTERM stop it between steps; a tick stopped in
 * its scan is taken up (the scan resumed) by the next start. Records (one JSON object per schedule and tick) go to
 * stdout, messages to stderr.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase, type Database } from '../platform/db/connect.js';
import { createSmtpSender, startLocalSink, type LocalSink, type SmtpSender } from '../platform/mail/index.js';
import { describePolicy, makePolicy, parseDuration, policyFromJson, readRetention } from '../schedules/index.js';
import { changeAuthor } from '../services/constituency.js';
import {
  addSchedule, deleteSchedule, describeScope, listRuns, listSchedules, parseScope, runScheduleTick, type ScheduleTickResult, type SchedulerDeps,
} from '../services/scheduler.js';
import { renderContext } from './campaign.js';

const show = (s: string, max = 80): string => sanitiseText(s, { max });

async function withDb<T>(ctx: CliContext, fn: (d: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(ctx.config());
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}

function table(lines: readonly (readonly string[])[]): string {
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function resultRecord(r: ScheduleTickResult, at: Date): Record<string, unknown> {
  return {
    at: at.toISOString(), schedule: sanitiseText(r.schedule, { style: 'json' }), status: r.status, run: r.runId, resumed: r.resumed, targets: r.targets.length,
    deferred: r.deferred, scan: r.scanId, closed: r.closed, followUps: r.followUps.map((f) => ({ campaign: f.campaign, followUpOf: f.followUpOf, queued: f.queued.length })),
    sent: r.sent, nextDue: r.nextDue?.toISOString() ?? null, error: r.error === null ? null : sanitiseText(r.error, { style: 'json', max: 500 }),
  };
}

interface AddFlags { policy?: string; every?: string; scope?: string; ports?: string; followUpAfter?: string; followUp: boolean; maxTargets?: string; as?: string }
interface RunFlags { once?: boolean; interval?: string; only?: string; localSink?: boolean; at?: string; workers?: string }

export function register(program: Command, ctx: CliContext): void {
  const s = program.command('schedule').description('recurring rescans by cadence policy (CyHy by default), with findings folded and follow-ups sent');
  s.command('list')
    .description('every schedule: name, policy, scope, enabled, last tick, next due')
    .action(async () => {
      const rows = await withDb(ctx, (d) => listSchedules(d.db));
      const lines = [['NAME', 'SCOPE', 'ENABLED', 'LAST TICK', 'NEXT DUE', 'POLICY']];
      const when = (d: Date | null): string => (d === null ? '-' : d.toISOString().slice(0, 16).replace('T', ' '));
      for (const r of rows) lines.push([show(r.name, 40), show(describeScope(r.scope), 40), r.enabled ? 'yes' : 'no', when(r.lastTick), when(r.nextDue), describePolicy(policyFromJson(r.policy))]);
      ctx.stdout.write(table(lines));
    });
  s.command('add')
    .description('add a schedule')
    .argument('<name>')
    .option('--policy <name>', 'cyhy (critical hosts daily, other product hosts weekly, the rest monthly; default) or every')
    .option('--every <duration>', 'one cadence for every target, e.g. 1d (implies --policy every)')
    .option('--scope <scope>', 'constituency (default) | all | org:NAME | cidr:CIDR[,CIDR...]')
    .option('--ports <list>', 'ports to scan (default 443)')
    .option('--follow-up-after <duration>', 'follow up organisations still exposed this long after their last warning (default 7d)')
    .option('--no-follow-up', 'scan and fold only; no follow-up campaigns')
    .option('--max-targets <n>', 'addresses per tick (default 4096)')
    .option('--as <name>', 'who adds it (default: the OS user)')
    .action(async (name: string, f: AddFlags) => {
      const everyMs = f.every === undefined ? undefined : parseDuration(f.every, '--every');
      const policy = makePolicy(f.policy ?? (everyMs === undefined ? 'cyhy' : 'every'), {
        ...(everyMs === undefined ? {} : { everyMs }),
        followUp: f.followUp,
        ...(f.followUpAfter === undefined ? {} : { followUpAfterMs: parseDuration(f.followUpAfter, '--follow-up-after') }),
        ...(f.maxTargets === undefined ? {} : { maxTargetsPerTick: /^\d{1,9}$/.test(f.maxTargets) ? Number(f.maxTargets) : NaN }),
        ...(f.ports === undefined ? {} : { ports: f.ports }),
      });
      const scope = parseScope(f.scope ?? 'constituency');
      const row = await withDb(ctx, (d) => addSchedule(d, { name, policy, scope, createdBy: changeAuthor(f.as) }));
      ctx.stderr.write(`tocsin: schedule ${show(row.name)} added: ${describePolicy(policy)}, scope ${show(describeScope(scope))}; run it with: tocsin schedule run\n`);
    });
  s.command('remove')
    .description('remove a schedule (its run history goes with it; scans and campaigns stay)')
    .argument('<name>')
    .action(async (name: string) => {
      await withDb(ctx, (d) => deleteSchedule(d, name));
      ctx.stderr.write(`tocsin: schedule ${show(name)} removed\n`);
    });
  s.command('runs')
    .description('the latest ticks that did something, newest first (JSON lines)')
    .option('--limit <n>', 'how many (default 20)')
    .action(async (f: { limit?: string }) => {
      const limit = f.limit === undefined ? 20 : /^\d{1,4}$/.test(f.limit) ? Number(f.limit) : NaN;
      if (!Number.isInteger(limit) || limit < 1) throw new TocsinError('TOCSIN_ARG_INVALID', '--limit takes a whole number from 1 to 9999');
      const runs = await withDb(ctx, (d) => listRuns(d.db, null, limit));
      for (const r of runs) {
        ctx.stdout.write(`${JSON.stringify({ id: r.id, schedule: r.scheduleId, tickAt: r.tickAt.toISOString(), stage: r.stage, targets: r.targets.length, scan: r.scanId, followUpCampaigns: r.followUpCampaigns, outcome: r.outcome, error: r.error === null ? null : sanitiseText(r.error, { style: 'json', max: 500 }) })}\n`);
      }
    });
  s.command('run')
    .description('the scheduler: tick every --interval (or once), scanning what is due, folding findings, sending follow-ups')
    .option('--once', 'one tick, then exit')
    .option('--interval <duration>', 'time between ticks (default 60s)')
    .option('--only <name>', 'only this schedule')
    .option('--local-sink', 'send follow-ups to the built-in local sink (saves under TOCSIN_HOME/mail) instead of TOCSIN_SMTP_URL')
    .option('--workers <n>', 'scan worker threads (default TOCSIN_WORKERS; 0 = automatic)')
    .option('--at <time>', 'the tick\'s clock (ISO 8601) instead of now: replays and tests; implies --once')
    .action(async (f: RunFlags) => {
      process.exitCode = await runCommand(ctx, f);
    });
}

/**
 * The scheduler's dependencies from the configuration, as `schedule run` builds them (for a job worker too): scan
 * settings, the mailer (TOCSIN_SMTP_URL + TOCSIN_MAIL_FROM, or the local sink), the render context. `close()` gives
 * the mailer back.
 */
export async function schedulerDepsFromConfig(
  ctx: CliContext,
  o: { readonly localSink?: boolean; readonly workers?: number; readonly signal?: AbortSignal; readonly only?: string } = {},
): Promise<{ readonly deps: SchedulerDeps; close(): Promise<void> }> {
  const config = ctx.config();
  readRetention(process.env); // every TOCSIN_* setting is checked at start, also the ones a later prune reads
  let sink: LocalSink | null = null;
  let sender: SmtpSender | null = null;
  if (o.localSink === true) {
    sink = await startLocalSink({ home: config.home });
    sender = createSmtpSender({ url: sink.url, from: config.mailFrom ?? 'tocsin@localhost.localdomain' });
    ctx.stderr.write(`tocsin: follow-ups go to the local sink on ${sink.url} (saved under ${sink.dir})\n`);
  } else if (config.smtpUrl !== null && config.mailFrom !== null) {
    sender = createSmtpSender({ url: config.smtpUrl, from: config.mailFrom });
  } else {
    ctx.stderr.write('tocsin: warning: TOCSIN_SMTP_URL/TOCSIN_MAIL_FROM not set: follow-up campaigns are created as drafts and not sent\n');
  }
  const deps: SchedulerDeps = {
    scan: {
      excludeFiles: config.excludeFiles, rate: config.rateLimit, ratePerNetwork: config.ratePerNetwork, concurrency: config.concurrency,
      userAgent: config.userAgent, workers: o.workers ?? config.workers,
    },
    mailer: sender,
    render: sender === null ? null : await renderContext(ctx),
    ...(o.signal === undefined ? {} : { signal: o.signal }),
    ...(o.only === undefined ? {} : { only: o.only }),
    log: (line) => ctx.stderr.write(`tocsin: ${line}\n`),
  };
  return {
    deps,
    close: async () => {
      await sender?.close();
      await sink?.close();
    },
  };
}

async function runCommand(ctx: CliContext, f: RunFlags): Promise<number> {
  const config = ctx.config();
  const intervalMs = f.interval === undefined ? 60_000 : parseDuration(f.interval, '--interval');
  const at = f.at === undefined ? null : new Date(f.at);
  if (at !== null && Number.isNaN(at.getTime())) throw new TocsinError('TOCSIN_ARG_INVALID', '--at takes an ISO 8601 time, e.g. 2026-03-01T00:00:00Z');
  const workers = f.workers === undefined ? config.workers : /^\d{1,2}$/.test(f.workers) ? Number(f.workers) : NaN;
  if (!Number.isInteger(workers) || workers > 64) throw new TocsinError('TOCSIN_ARG_INVALID', '--workers takes a whole number from 0 to 64');
  const stop = new AbortController();
  const onSignal = (): void => {
    if (!stop.signal.aborted) ctx.stderr.write('\ntocsin: stopping the scheduler (a scan in progress is resumed by the next start)…\n');
    stop.abort('stopped by a signal');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const built = await schedulerDepsFromConfig(ctx, { localSink: f.localSink === true, workers, signal: stop.signal, ...(f.only === undefined ? {} : { only: f.only }) });
  const database = await openDatabase(config).catch(async (e: unknown) => {
    await built.close();
    throw e;
  });
  try {
    const deps = built.deps;
    const once = f.once === true || at !== null;
    let failed = false;
    for (;;) {
      const now = at ?? new Date();
      const results = await runScheduleTick(database, deps, now);
      for (const r of results) {
        ctx.stdout.write(`${JSON.stringify(resultRecord(r, now))}\n`);
        if (r.status === 'error') failed = true;
      }
      if (once || stop.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        stop.signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
      if (stop.signal.aborted) break;
    }
    if (stop.signal.aborted) return 130;
    return failed ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await built.close();
    await database.close();
  }
}
