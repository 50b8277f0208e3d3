/**
 * `tocsin mail ingest PATH [--format table|jsonl]`: read the campaigns' bounces and replies from a Maildir or an
 * mbox (issue 9 §2, delivery tracking); `tocsin mail replies CAMPAIGN [--format table|jsonl]`: what came back.
 * Thin: parse → services/mail-ingest.ts → print. One record per mail on stdout (a table line as it is read, or
 * jsonl); the summary on stderr. Every value that came from a mail is hostile: sanitised in the table, escaped
 * by JSON in jsonl.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { parseCampaignId } from '../platform/db/campaign-store.js';
import { campaignInbound, ingestMailbox, type IngestItem, type InboundRow } from '../services/mail-ingest.js';

type Format = 'table' | 'jsonl';

function formatOf(raw: string | undefined): Format {
  const f = raw ?? 'table';
  if (f !== 'table' && f !== 'jsonl') throw new TocsinError('TOCSIN_ARG_INVALID', '--format must be table or jsonl');
  return f;
}

const cell = (s: string | null, max: number): string => (s === null || s === '' ? '-' : sanitiseText(s, { max }));
const json = (s: string | null): string | null => (s === null ? null : sanitiseText(s, { style: 'json' }));

function itemLine(i: IngestItem, format: Format): string {
  if (format === 'jsonl') {
    return `${JSON.stringify({ location: json(i.location), kind: i.kind, effect: i.effect, campaign: i.campaign, org: json(i.org), ticket: i.ticket, detail: json(i.detail) })}\n`;
  }
  return `${[cell(i.location, 50).padEnd(50), i.kind.padEnd(15), i.effect.padEnd(14), (i.ticket ?? '-').padEnd(17), cell(i.org, 24).padEnd(24), cell(i.detail, 100)].join('  ').trimEnd()}\n`;
}

function inboundLine(r: InboundRow, format: Format): string {
  if (format === 'jsonl') {
    return `${JSON.stringify({
      org: json(r.org), ticket: r.ticket, kind: r.kind, step: r.step, from: json(r.from), date: r.date?.toISOString() ?? null, subject: json(r.subject),
      text: json(r.excerpt), finalRecipient: json(r.finalRecipient), status: json(r.status), effect: json(r.effect), at: r.at.toISOString(),
    })}\n`;
  }
  const what = r.kind === 'reply' || r.kind === 'auto-reply' ? `${cell(r.from, 40)}: ${cell(r.subject, 60)}` : `${cell(r.finalRecipient, 40)} ${cell(r.status, 10)}`;
  return `${[cell(r.org, 24).padEnd(24), r.ticket, r.kind.padEnd(10), what, cell(r.effect, 60)].join('  ').trimEnd()}\n`;
}

export function register(program: Command, ctx: CliContext): void {
  const mail = program.command('mail').description('delivery tracking: bounces (RFC 3464 DSNs) and replies to campaign warnings');
  mail.command('ingest')
    .description('read a Maildir or mbox: bounces move a warning to the next contact, replies are linked; reading it again changes nothing')
    .argument('<path>', 'a Maildir (the folder holding cur/ and new/) or an mbox file')
    .option('--format <format>', 'table | jsonl (default table)')
    .action(async (path: string, flags: { format?: string }) => {
      const format = formatOf(flags.format);
      let header = format === 'table';
      const database = await openDatabase(ctx.config());
      try {
        const s = await ingestMailbox(database.db, path, {
          onItem: (i) => {
            if (header) ctx.stdout.write(`${['MAIL'.padEnd(50), 'KIND'.padEnd(15), 'EFFECT'.padEnd(14), 'TICKET'.padEnd(17), 'ORG'.padEnd(24), 'DETAIL'].join('  ')}\n`);
            header = false;
            ctx.stdout.write(itemLine(i, format));
          },
        });
        ctx.stderr.write(`tocsin: ${s.read} mail(s) read: ${Object.entries(s.counts).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}\n`);
        for (const id of s.campaignsToSend) ctx.stderr.write(`tocsin: campaign ${id} has warnings queued for their next contact: tocsin campaign send ${id}\n`);
      } finally {
        await database.close();
      }
    });
  mail.command('replies')
    .description('what came back for a campaign: bounces, delays, replies and auto-replies, oldest first')
    .argument('<campaign>')
    .option('--format <format>', 'table | jsonl (default table)')
    .action(async (raw: string, flags: { format?: string }) => {
      const format = formatOf(flags.format);
      const id = parseCampaignId(raw);
      if (id === null) throw new TocsinError('TOCSIN_CAMPAIGN_NOT_FOUND', `no campaign with id ${JSON.stringify(sanitiseText(raw, { max: 40 }))} (campaign ids are numbers)`);
      const database = await openDatabase(ctx.config());
      try {
        for (const r of await campaignInbound(database.db, id)) ctx.stdout.write(inboundLine(r, format));
      } finally {
        await database.close();
      }
    });
}
