/**
 * `tocsin serve [--host 127.0.0.1] [--port 8080]`: the web API (issue 10 §1) on the CLI's database (embedded by
 * default). Listens on loopback unless told otherwise: put a TLS-terminating proxy in front for anything else and
 * set TOCSIN_WEB_SECURE_COOKIES=true so the session cookie is marked Secure.
 */
import type { Command } from 'commander';
import { TocsinError } from '../core/errors.js';
import { openDatabase } from '../platform/db/connect.js';
import { ensureFirstAdmin } from '../services/accounts.js';
import { warmDashboard } from '../services/dashboard.js';
import { startRescanRunner } from '../services/rescan-requests.js';
import { buildApp } from '../web/app.js';
import { parseIntFlag } from './args.js';
import { untilStopSignal, type CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('serve the web API until interrupted (log in with an account from `tocsin user add`; docs at /api/docs)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0: any free port)', '8080')
    .option('--no-rescans', 'do not run verification rescans in this process (another server or worker runs them)')
    .action(async (flags: { host: string; port: string; rescans: boolean }) => {
      const port = parseIntFlag('--port', flags.port, 0, 65535);
      const secure = process.env['TOCSIN_WEB_SECURE_COOKIES'];
      if (secure !== undefined && secure !== 'true' && secure !== 'false') {
        throw new TocsinError('TOCSIN_ARG_INVALID', 'TOCSIN_WEB_SECURE_COOKIES must be true or false');
      }
      const database = await openDatabase(ctx.config());
      try {
        const first = await ensureFirstAdmin(database.db, process.env['TOCSIN_ADMIN_EMAIL'] ?? 'admin@localhost');
        if (first !== null) {
          ctx.stderr.write(`tocsin: no account existed, so one administrator was created; log in with\n  e-mail:   ${first.email}\n  password: ${first.password}\n(shown once; change it with \`tocsin user passwd ${first.email}\` or add your own with \`tocsin user add\`)\n`);
        }
        const app = await buildApp({ db: database.db, secureCookies: secure === 'true' });
        const address = await app.listen({ host: flags.host, port });
        ctx.stderr.write(`tocsin: serving ${address} (API docs: ${address}/api/docs); Ctrl+C stops\n`);
        ctx.stdout.write(`${JSON.stringify({ event: 'listening', url: address })}\n`);
        // The dashboard's first load computes over every finding (seconds at a million): start it now, in the
        // background, so the first analyst does not wait for all of it (one who comes sooner shares it). Closing the
        // database on stop fails a warm-up still running: `stopping` keeps that quiet.
        let stopping = false;
        void warmDashboard(database.db).catch((e: unknown) => {
          if (!stopping) ctx.stderr.write(`tocsin: dashboard warm-up: ${e instanceof Error ? e.message : String(e)}\n`);
        });
        // Verification rescans the portal queues: run here unless another process does (issue 10 §4).
        const rescans = flags.rescans ? startRescanRunner({
          database, config: ctx.config(),
          onError: (e) => ctx.stderr.write(`tocsin: rescan runner: ${e instanceof Error ? e.message : String(e)}\n`),
        }) : null;
        await untilStopSignal();
        stopping = true;
        await rescans?.stop();
        await app.close();
      } finally {
        await database.close();
      }
    });
}
