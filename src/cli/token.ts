/**
 * `tocsin token create EMAIL [--name N] [--expires 90d]` prints an API token once (send it as
 * `Authorization: Bearer TOKEN`; only its SHA-256 is stored); `tocsin token list`; `tocsin token revoke ID`.
 */
import type { Command } from 'commander';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { createToken, revokeTokenById, tokensList } from '../services/accounts.js';
import { parseIntFlag } from './args.js';
import type { CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  const token = program.command('token').description('API tokens for scripts: create, list, revoke');
  token
    .command('create <email>')
    .description('create a token for the account and print it once')
    .option('--name <name>', 'what the token is for', 'token')
    .option('--expires <ttl>', 'lifetime: 90d, 12h or never', '90d')
    .action(async (email: string, flags: { name: string; expires: string }) => {
      const database = await openDatabase(ctx.config());
      try {
        const t = await createToken(database.db, email, { name: flags.name, expires: flags.expires });
        ctx.stderr.write(`tocsin: token ${t.id} created (expires ${t.expiresAt?.toISOString() ?? 'never'}); shown once:\n`);
        ctx.stdout.write(`${t.token}\n`);
      } finally {
        await database.close();
      }
    });
  token
    .command('list')
    .description('list tokens (never the tokens themselves)')
    .action(async () => {
      const database = await openDatabase(ctx.config());
      try {
        for (const t of await tokensList(database.db)) {
          const state = t.revokedAt !== null ? 'revoked' : t.expiresAt !== null && t.expiresAt <= new Date() ? 'expired' : 'live';
          ctx.stdout.write(`${[t.id, t.email, sanitiseText(t.name, { max: 60 }), state, t.expiresAt?.toISOString() ?? 'never', t.lastUsedAt?.toISOString() ?? '-'].join('\t')}\n`);
        }
      } finally {
        await database.close();
      }
    });
  token
    .command('revoke <id>')
    .description('revoke a token by its id (see token list)')
    .action(async (id: string) => {
      const database = await openDatabase(ctx.config());
      try {
        await revokeTokenById(database.db, parseIntFlag('id', id, 1, Number.MAX_SAFE_INTEGER));
        ctx.stderr.write('tocsin: revoked\n');
      } finally {
        await database.close();
      }
    });
}
