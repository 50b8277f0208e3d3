/**
 * `tocsin user add EMAIL --role admin|analyst|org [--org NAME] [--password-stdin]`, `tocsin user list`,
 * `tocsin user disable EMAIL`: web accounts (issue 10 §2). Without --password-stdin a password is generated and
 * printed once (on stdout, so it can be piped into a password manager); only its argon2id hash is stored.
 */
import type { Command } from 'commander';
import { sanitiseText } from '../core/text.js';
import { openDatabase } from '../platform/db/connect.js';
import { addUser, disableUser, setPassword, usersList } from '../services/accounts.js';
import { accountMailFromEnv, inviteUser } from '../services/account-mail.js';
import type { CliContext } from './context.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

export function register(program: Command, ctx: CliContext): void {
  const user = program.command('user').description('web accounts: add, passwd, list, disable');
  user
    .command('add <email>')
    .description('add an account; prints a generated password once unless --password-stdin')
    .requiredOption('--role <role>', 'admin | analyst | org')
    .option('--org <name>', 'the organisation an org account sees (required for --role org)')
    .option('--password-stdin', 'read the password from standard input (first line)')
    .action(async (email: string, flags: { role: string; org?: string; passwordStdin?: boolean }) => {
      // Read before the database starts, so a pipe is not left waiting on a slow first start.
      const password = flags.passwordStdin === true ? (await readAll(process.stdin)).split(/\r?\n/)[0] ?? '' : undefined;
      const database = await openDatabase(ctx.config());
      try {
        const r = await addUser(database.db, { email, role: flags.role, ...(flags.org === undefined ? {} : { org: flags.org }), ...(password === undefined ? {} : { password }) });
        ctx.stderr.write(`tocsin: added ${r.email} (${r.role}${r.org === null ? '' : `, ${sanitiseText(r.org, { max: 80 })}`})\n`);
        if (r.generatedPassword !== null) {
          ctx.stderr.write('tocsin: its password (shown once, stored only as an argon2id hash):\n');
          ctx.stdout.write(`${r.generatedPassword}\n`);
        }
      } finally {
        await database.close();
      }
    });
  user
    .command('invite <email>')
    .description('add an account without a password and e-mail it a one-time link (72 h) to choose one (needs TOCSIN_SMTP_URL, TOCSIN_MAIL_FROM, TOCSIN_WEB_URL)')
    .requiredOption('--role <role>', 'admin | analyst | org')
    .option('--org <name>', 'the organisation an org account sees (required for --role org)')
    .action(async (email: string, flags: { role: string; org?: string }) => {
      const mail = accountMailFromEnv();
      const database = await openDatabase(ctx.config());
      try {
        const r = await inviteUser(database.db, mail.mailer, { email, role: flags.role, ...(flags.org === undefined ? {} : { org: flags.org }) }, mail.baseUrl, { fromAddress: mail.fromAddress });
        ctx.stderr.write(`tocsin: added ${r.email} (${r.role}${r.org === null ? '' : `, ${sanitiseText(r.org, { max: 80 })}`}); invitation ${r.mail.kind === 'accepted' ? 'sent' : `NOT sent (${r.mail.kind}); retry with a password reset on /reset`}, valid until ${r.expiresAt.toISOString()}\n`);
        if (r.mail.kind !== 'accepted') process.exitCode = 75;
      } finally {
        await database.close();
        await mail.close();
      }
    });
  user
    .command('passwd <email>')
    .description('set a new password (generated and printed once unless --password-stdin); ends the account\'s sessions')
    .option('--password-stdin', 'read the password from standard input (first line)')
    .action(async (email: string, flags: { passwordStdin?: boolean }) => {
      const password = flags.passwordStdin === true ? (await readAll(process.stdin)).split(/\r?\n/)[0] ?? '' : undefined;
      const database = await openDatabase(ctx.config());
      try {
        const r = await setPassword(database.db, email, password);
        ctx.stderr.write(`tocsin: new password set for ${r.email}; its sessions ended\n`);
        if (r.generatedPassword !== null) {
          ctx.stderr.write('tocsin: its password (shown once, stored only as an argon2id hash):\n');
          ctx.stdout.write(`${r.generatedPassword}\n`);
        }
      } finally {
        await database.close();
      }
    });
  user
    .command('list')
    .description('list accounts')
    .action(async () => {
      const database = await openDatabase(ctx.config());
      try {
        for (const u of await usersList(database.db)) {
          ctx.stdout.write(`${[u.email, u.role, sanitiseText(u.org ?? '-', { max: 60 }), u.disabled ? 'disabled' : 'enabled', u.createdAt.toISOString()].join('\t')}\n`);
        }
      } finally {
        await database.close();
      }
    });
  user
    .command('disable <email>')
    .description('disable an account (its sessions end; its tokens stop working)')
    .action(async (email: string) => {
      const database = await openDatabase(ctx.config());
      try {
        await disableUser(database.db, email);
        ctx.stderr.write('tocsin: disabled\n');
      } finally {
        await database.close();
      }
    });
}
