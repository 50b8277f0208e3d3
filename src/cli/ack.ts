/**
 * `tocsin ack TOKEN`: records the signed link of a warning as the organisation's acknowledgement (issue 9 §2):
 * its message becomes `acknowledged` and its findings get an `acknowledged` event. A malformed, forged or expired
 * token is TOCSIN_ACK_TOKEN_INVALID. Thin: services/campaigns.ts `acknowledge` does the work (the web link will
 * call the same).
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { acknowledge, ackSecret } from '../services/campaigns.js';

export function register(program: Command, ctx: CliContext): void {
  program.command('ack')
    .description('record an acknowledgement token (the link in a warning): the organisation\'s message becomes acknowledged')
    .argument('<token>', 'the token from the link (v1.TICKET.EXPIRY.SIGNATURE), or the whole link')
    .action(async (raw: string) => {
      const config = ctx.config();
      // The whole link pasted is fine: the token is its last path segment or query value.
      const token = /[?/=]/.test(raw) ? raw.trim().split(/[/=?]/).pop() ?? raw : raw;
      const secret = await ackSecret(process.env, config.home);
      const database = await openDatabase(config);
      try {
        const r = await acknowledge(database.db, token, secret);
        ctx.stdout.write(`${r.ticket}\n`);
        ctx.stderr.write(`tocsin: ticket ${r.ticket} (${sanitiseText(r.org, { max: 80 })}) ${r.first ? 'acknowledged' : 'was acknowledged before'}\n`);
      } finally {
        await database.close();
      }
    });
}
