/**
 * `tocsin campaign create|preview|approve|send|status|resend|cancel|follow-up|list|ack`: warning campaigns (issue 9 §2).
 * Thin: parse → src/services/campaigns.ts → print. `create` prints the new id alone on stdout; `status` prints
 * one record per organisation (table or jsonl); messages go to stderr.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { parseMailFrom } from '../core/smtp-url.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase, type Database } from '../platform/db/connect.js';
import { parseCampaignId } from '../platform/db/campaign-store.js';
import { DEFAULT_SEND_CONCURRENCY } from '../services/campaign-sender.js';
import { createSmtpSender, startLocalSink, type LocalSink, type SmtpSender } from '../platform/mail/index.js';
import {
  acknowledge, ackSecret, approveCampaign, campaignStatus, cancelCampaign, createCampaign, listCampaigns, previewCampaign,
  resendMessage, sendCampaign, type CampaignMailer, type RenderContext, type StatusRecord,
} from '../services/campaigns.js';
import { changeAuthor } from '../services/constituency.js';
import { followUpCampaign, parseAfter } from '../services/follow-up.js';
import { addExportOptions, runExport, type ExportFlags } from './export.js';

const show = (s: string | null, max = 80): string => (s === null ? '-' : sanitiseText(s, { max }));

function campaignId(raw: string): number {
  const id = parseCampaignId(raw);
  if (id === null) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `no campaign with id ${JSON.stringify(sanitiseText(raw, { max: 40 }))} (campaign ids are numbers)`);
  return id;
}

async function withDb<T>(ctx: CliContext, fn: (d: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(ctx.config());
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `10`, `10/s` → 10 per second; `30`, `30/min` → 30 per minute for per-domain. */
export function parseRate(flag: string, raw: string | undefined, unit: 's' | 'min'): number {
  if (raw === undefined) return 0;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|min|m))?\s*$/.exec(raw);
  const n = m === null ? NaN : Number(m[1]);
  const given = m?.[2];
  const okUnit = given === undefined || (unit === 's' ? given === 's' || given === 'sec' : given === 'min' || given === 'm');
  if (m === null || !Number.isFinite(n) || n <= 0 || !okUnit) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `${flag} takes a positive number${unit === 's' ? ' per second (e.g. 10/s)' : ' per minute (e.g. 30/min)'}`);
  }
  return n;
}

export async function renderContext(ctx: CliContext): Promise<RenderContext> {
  const config = ctx.config();
  const from = config.mailFrom === null ? null : parseMailFrom(config.mailFrom).from;
  const base = process.env.TOCSIN_ACK_URL && process.env.TOCSIN_ACK_URL !== '' ? process.env.TOCSIN_ACK_URL : new URL('/ack/', config.contactUrl.startsWith('http') ? config.contactUrl : 'https://tocsin.invalid/').toString();
  return {
    fromAddress: from?.address ?? 'tocsin@tocsin.invalid',
    contactUrl: config.contactUrl,
    ackSecret: await ackSecret(process.env, config.home),
    ackUrlBase: base.endsWith('/') || base.endsWith('=') ? base : `${base}/`,
  };
}

interface CreateFlags {
  name: string;
  cve?: string[];
  group?: string;
  compromised?: boolean;
  source?: string;
  sector?: string;
  org?: string[];
  template?: string;
  languageDefault?: string;
  as?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const c = program.command('campaign').description('warn organisations about their exposed services by e-mail, once each, through a durable outbox');
  c.command('create')
    .description('select exposures and freeze one message per organisation (prints the campaign id on stdout)')
    .requiredOption('--name <name>', 'the campaign\'s name (shown in List-Id)')
    .option('--cve <ids>', 'CVE ids, comma-separated (repeatable)', collect)
    .option('--group <name>', 'a CVE group, e.g. proxylogon (see tocsin kb --groups)')
    .option('--compromised', 'only hosts with evidence of compromise')
    .option('--source <source>', 'scan | feed | any (default any)')
    .option('--sector <sector>', 'only organisations of this sector')
    .option('--org <name>', 'only this organisation (repeatable)', collect)
    .option('--template <name>', 'template under data/templates (default warning)')
    .option('--language-default <lang>', 'language when the contact has none or no template exists for it (default en)')
    .option('--as <name>', 'who creates it (default: the OS user)')
    .action(async (flags: CreateFlags) => {
      const source = flags.source ?? 'any';
      if (source !== 'scan' && source !== 'feed' && source !== 'any') throw new TocsinError('TOCSIN_ARG_INVALID', '--source must be scan, feed or any');
      const config = ctx.config();
      const from = config.mailFrom === null ? null : parseMailFrom(config.mailFrom).from?.address ?? null;
      const r = await withDb(ctx, (d) => createCampaign(d.db, {
        name: flags.name, cves: flags.cve ?? [], group: flags.group ?? null, compromisedOnly: flags.compromised === true, source,
        sector: flags.sector ?? null, orgs: flags.org ?? [], template: flags.template ?? 'warning', languageDefault: flags.languageDefault ?? 'en',
        createdBy: changeAuthor(flags.as), fallbackContact: process.env.TOCSIN_FALLBACK_CONTACT ?? null, fromAddress: from,
      }));
      ctx.stdout.write(`${r.id}\n`);
      ctx.stderr.write(`tocsin: campaign ${r.id}: ${r.queued} message(s) queued, ${r.suppressed} suppressed, ${r.unattributed} exposure(s) unattributed (not warned); ` +
        `next: tocsin campaign preview ${r.id}, then tocsin campaign approve ${r.id}\n`);
    });
  c.command('preview')
    .description('print the messages as they would be sent (nothing is sent or stored)')
    .argument('<id>')
    .option('--org <name>', 'only this organisation\'s message')
    .action(async (id: string, flags: { org?: string }) => {
      const cid = campaignId(id);
      const rc = await renderContext(ctx);
      const items = await withDb(ctx, (d) => previewCampaign(d.db, cid, rc, flags.org));
      for (const it of items) {
        if (it.message === null) {
          ctx.stdout.write(`=== ${show(it.org)}: ${it.state} (${show(it.reason, 200)})\n\n`);
          continue;
        }
        const m = it.message;
        const out = [
          `=== ${show(it.org)}: ${it.state}`,
          `To: ${m.to.join(', ')}`,
          `Subject: ${m.subject}`,
          `Message-ID: ${m.messageId}`,
          ...Object.entries(m.headers).map(([k, v]) => `${k}: ${v}`),
          '',
          m.text,
          '--- text/html ---',
          m.html,
          ...m.attachments.flatMap((a) => [`--- attachment ${a.filename} (${a.contentType}) ---`, a.content]),
          '',
        ].join('\n');
        // Values are escaped for mail already; this keeps a terminal safe from anything a template itself holds.
        ctx.stdout.write(`${sanitiseText(out, { keepNewlines: true })}\n`);
      }
    });
  c.command('approve')
    .description('approve a campaign for sending')
    .argument('<id>')
    .option('--as <who>', 'who approves (default: the OS user)')
    .action(async (id: string, flags: { as?: string }) => {
      const cid = campaignId(id);
      const r = await withDb(ctx, (d) => approveCampaign(d.db, cid, changeAuthor(flags.as)));
      ctx.stderr.write(`tocsin: campaign ${r.id} approved by ${show(r.approvedBy)}; send it with: tocsin campaign send ${r.id}\n`);
    });
  c.command('send')
    .description('send what is due: queued messages and deferred ones whose retry time has come (run again to retry)')
    .argument('<id>')
    .option('--dry-run', 'render every due message and count them; send nothing, change nothing')
    .option('--rate <n/s>', 'messages per second overall (default: as fast as the relay takes them)')
    .option('--per-domain <n/min>', 'messages per recipient domain per minute (default: unlimited)')
    .option('--concurrency <n>', 'SMTP transactions (and relay connections) at once (default 8; 1 = one message at a time)')
    .option('--local-sink', 'send to the built-in local sink (saves under TOCSIN_HOME/mail) instead of TOCSIN_SMTP_URL')
    .action(async (id: string, flags: { dryRun?: boolean; rate?: string; perDomain?: string; concurrency?: string; localSink?: boolean }) => {
      process.exitCode = await sendCommand(ctx, campaignId(id), flags);
    });
  c.command('status')
    .description('one record per organisation: org, recipients, state, ticket, messageId, ...')
    .argument('<id>')
    .option('--format <format>', 'table | jsonl (default table)')
    .action(async (id: string, flags: { format?: string }) => {
      const format = flags.format ?? 'table';
      if (format !== 'table' && format !== 'jsonl') throw new TocsinError('TOCSIN_ARG_INVALID', '--format must be table or jsonl');
      const cid = campaignId(id);
      const { campaign, records } = await withDb(ctx, (d) => campaignStatus(d.db, cid));
      if (format === 'jsonl') {
        for (const r of records) ctx.stdout.write(`${JSON.stringify(jsonSafe(r))}\n`);
      } else {
        ctx.stdout.write(statusTable(records));
        const counts = new Map<string, number>();
        for (const r of records) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
        ctx.stderr.write(`tocsin: campaign ${campaign.id} ${show(campaign.name)} (${campaign.state}): ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'no messages'}\n`);
        const unc = records.filter((r) => r.state === 'uncertain');
        if (unc.length > 0) ctx.stderr.write(`tocsin: ${unc.length} uncertain: check the relay's log, then \`tocsin campaign resend ${campaign.id} --org NAME --confirm\` where it was not delivered\n`);
      }
    });
  c.command('resend')
    .description('queue an uncertain or bounced message again after checking it was not delivered; the next send sends it')
    .argument('<id>')
    .requiredOption('--org <name>', 'the organisation')
    .option('--confirm', 'I checked: it was not delivered')
    .option('--as <who>', 'who decides (default: the OS user)')
    .action(async (id: string, flags: { org: string; confirm?: boolean; as?: string }) => {
      if (flags.confirm !== true) throw new TocsinError('TOCSIN_ARG_INVALID', 'resend may warn the organisation twice: check the relay\'s log, then add --confirm');
      const cid = campaignId(id);
      const m = await withDb(ctx, (d) => resendMessage(d.db, cid, flags.org, changeAuthor(flags.as)));
      ctx.stderr.write(`tocsin: ${show(m.orgName)} queued again (ticket ${m.ticket}); send with: tocsin campaign send ${cid}\n`);
    });
  c.command('cancel')
    .description('cancel a campaign: what has not been sent is not sent')
    .argument('<id>')
    .option('--as <who>', 'who cancels (default: the OS user)')
    .action(async (id: string, flags: { as?: string }) => {
      const cid = campaignId(id);
      const r = await withDb(ctx, (d) => cancelCampaign(d.db, cid, changeAuthor(flags.as)));
      ctx.stderr.write(`tocsin: campaign ${r.id} cancelled by ${show(r.cancelledBy)}\n`);
    });
  c.command('follow-up')
    .description('a follow-up campaign (draft) for the organisations still exposed at least --after since their last warning (prints its id)')
    .argument('<id>')
    .requiredOption('--after <duration>', 'e.g. 7d, 36h, 2w')
    .option('--as <who>', 'who creates it (default: the OS user)')
    .action(async (id: string, flags: { after: string; as?: string }) => {
      const cid = campaignId(id);
      const afterMs = parseAfter(flags.after);
      const r = await withDb(ctx, (d) => followUpCampaign(d.db, cid, { afterMs, createdBy: changeAuthor(flags.as) }));
      for (const s of r.skipped) ctx.stderr.write(`tocsin: ${show(s.org)}: no follow-up (${s.reason})\n`);
      if (r.id === null) {
        ctx.stderr.write(`tocsin: campaign ${r.followUpOf}: nobody needs a follow-up now\n`);
        return;
      }
      ctx.stdout.write(`${r.id}\n`);
      ctx.stderr.write(`tocsin: follow-up campaign ${r.id} to campaign ${r.followUpOf}: ${r.queued.length} message(s) queued; next: tocsin campaign preview ${r.id}, then approve and send it\n`);
    });
  addExportOptions(c.command('export <id>').description('export the campaign as a MISP event or a STIX 2.1 bundle (same as tocsin export campaign)'))
    .action(async (id: string, flags: ExportFlags) => runExport(ctx, 'campaign', id, flags));
  c.command('list')
    .description('every campaign with its message counts per state')
    .action(async () => {
      const rows = await withDb(ctx, (d) => listCampaigns(d.db));
      const lines = [['ID', 'NAME', 'STATE', 'CREATED', 'MESSAGES']];
      for (const r of rows) {
        lines.push([String(r.id), show(r.name, 40), r.state, r.createdAt.toISOString().slice(0, 16).replace('T', ' '),
          Object.entries(r.counts).map(([s, n]) => `${n} ${s}`).join(', ') || '-']);
      }
      ctx.stdout.write(table(lines));
    });
  c.command('ack')
    .description('record an acknowledgement token (the link in a warning) as the organisation\'s acknowledgement')
    .argument('<token>')
    .action(async (token: string) => {
      const config = ctx.config();
      const secret = await ackSecret(process.env, config.home);
      const r = await withDb(ctx, (d) => acknowledge(d.db, token, secret));
      ctx.stderr.write(`tocsin: ticket ${r.ticket} (${show(r.org)}) ${r.first ? 'acknowledged' : 'was acknowledged before'}\n`);
    });
}

async function sendCommand(ctx: CliContext, id: number, flags: { dryRun?: boolean; rate?: string; perDomain?: string; concurrency?: string; localSink?: boolean }): Promise<number> {
  const config = ctx.config();
  const concurrency = flags.concurrency === undefined ? DEFAULT_SEND_CONCURRENCY : Number(flags.concurrency);
  if (!/^\s*\d+\s*$/.test(flags.concurrency ?? '8') || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new TocsinError('TOCSIN_ARG_INVALID', '--concurrency takes a whole number from 1 to 256');
  }
  const rate = parseRate('--rate', flags.rate, 's');
  const perDomain = parseRate('--per-domain', flags.perDomain, 'min');
  const rc = await renderContext(ctx);
  let sink: LocalSink | null = null;
  let sender: SmtpSender | null = null;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (flags.dryRun !== true) {
      if (flags.localSink === true) {
        sink = await startLocalSink({ home: config.home });
        ctx.stderr.write(`tocsin: local sink on ${sink.url}: messages are saved under ${sink.dir}\n`);
        sender = createSmtpSender({ url: sink.url, from: config.mailFrom ?? 'tocsin@localhost.localdomain', maxConnections: concurrency });
      } else {
        if (config.smtpUrl === null || config.mailFrom === null) {
          throw new TocsinError('TOCSIN_CONFIG_INVALID', 'sending needs TOCSIN_SMTP_URL and TOCSIN_MAIL_FROM (or --local-sink, or --dry-run)');
        }
        sender = createSmtpSender({ url: config.smtpUrl, from: config.mailFrom, maxConnections: concurrency });
      }
    }
    const mailer: CampaignMailer | null = sender;
    const s = await withDb(ctx, (d) => sendCampaign(d.db, id, mailer, {
      ...rc, dryRun: flags.dryRun === true, ratePerSecond: rate, perDomainPerMinute: perDomain, concurrency, signal: stop.signal,
      onMessage: (org, state, reply) => ctx.stderr.write(`tocsin: ${show(org)}: ${state}${reply === null ? '' : ` (${show(reply, 200)})`}\n`),
    }));
    if (s.sweptUncertain.length > 0) {
      ctx.stderr.write(`tocsin: ${s.sweptUncertain.length} message(s) were in flight when an earlier sender stopped: now uncertain, not resent (${s.sweptUncertain.map((o) => show(o, 40)).join(', ')})\n`);
    }
    if (s.dryRun) ctx.stderr.write(`tocsin: dry run: ${s.considered} message(s) would be sent; nothing was sent\n`);
    else {
      ctx.stderr.write(`tocsin: campaign ${id}: ${s.considered} attempt(s): ${s.sent} sent, ${s.deferred} deferred, ${s.bounced} bounced, ${s.uncertain} uncertain, ${s.rerouted} moved to the next contact` +
        `${s.nextRetryAt === null ? '' : `; deferred ones are due from ${s.nextRetryAt}: run send again then`}${s.stopped ? '; stopped by a signal' : ''}\n`);
    }
    return s.stopped ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sender?.close();
    await sink?.close();
  }
}

function jsonSafe(r: StatusRecord): StatusRecord {
  return { ...r, org: sanitiseText(r.org, { style: 'json' }), reason: r.reason === null ? null : sanitiseText(r.reason, { style: 'json' }) };
}

function statusTable(records: readonly StatusRecord[]): string {
  const lines = [['ORG', 'STATE', 'TICKET', 'RECIPIENTS', 'TRIES', 'REASON / REPLY']];
  for (const r of records) {
    lines.push([show(r.org, 30), r.state, r.ticket, show(r.recipients.join(' '), 40), String(r.attempts), show(r.reason ?? r.smtpReply ?? '', 60)]);
  }
  return table(lines);
}

function table(lines: readonly (readonly string[])[]): string {
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
