/**
 * `tocsin db status|migrate|prune|vacuum|stop`: look at, migrate, prune (retention), vacuum or stop the database.
 * `status` starts nothing.
 * The embedded server stops by itself when the last tocsin process using it closes (see
 * src/platform/db/embedded.ts); `stop` is for a server left running (e.g. after `kill -9`).
 */
import type { Command } from 'commander';
import { sql, type Kysely } from 'kysely';
import type { CliContext } from './context.js';
import { TocsinError } from '../core/errors.js';
import { openDatabase, redactDatabaseUrl } from '../platform/db/connect.js';
import { embeddedStatus, stopEmbedded } from '../platform/db/embedded.js';
import { appliedMigrations, runMigrations } from '../platform/db/migrate.js';
import { MIGRATIONS } from '../platform/db/migrations/index.js';
import { pruneRetention, vacuumBigTables } from '../platform/db/retention-store.js';
import { cutoff, readRetention } from '../schedules/index.js';

export function register(program: Command, ctx: CliContext): void {
  const db = program.command('db').description('the database: status, migrate, stop (the embedded server)');

  db.command('status')
    .description('show which database is used, whether the embedded server runs, and the schema version; starts nothing')
    .action(async () => {
      const config = ctx.config();
      const lines: string[] = [];
      if (config.databaseUrl === null) {
        const s = await embeddedStatus(config.home);
        lines.push(
          `database     embedded PostgreSQL in ${s.home}/pg`,
          `initialised  ${s.initialised ? 'yes' : 'no (created on first use)'}`,
          `server       ${s.running ? `running, pid ${s.pid ?? '?'}, 127.0.0.1:${s.port ?? '?'}` : 'stopped'}`,
          `clients      ${s.clients.length === 0 ? 'none' : s.clients.map((p) => `pid ${p}`).join(', ')}`,
          `log          ${s.logFile}`,
          `migrations   ${MIGRATIONS.length} known (applied when a command opens the database)`,
        );
      } else {
        lines.push(`database     ${redactDatabaseUrl(config.databaseUrl)}`);
        const database = await openDatabase(config, { migrate: false });
        try {
          const applied = await appliedMigrations(database.db as unknown as Kysely<unknown>);
          const version = await sql<{ v: string }>`SELECT current_setting('server_version') AS v`.execute(database.db);
          const pending = MIGRATIONS.filter((m) => !applied.includes(m.id)).map((m) => m.id);
          lines.push(
            `server       PostgreSQL ${version.rows[0]?.v ?? '?'}`,
            `migrations   ${applied.length} applied; ${pending.length === 0 ? 'none pending' : `pending: ${pending.join(', ')}`}`,
          );
        } finally {
          await database.close();
        }
      }
      ctx.stdout.write(`${lines.join('\n')}\n`);
    });

  db.command('migrate')
    .description('apply pending schema migrations (every command does this when it opens the database)')
    .action(async () => {
      const database = await openDatabase(ctx.config(), { migrate: false });
      try {
        const run = await runMigrations(database.db as unknown as Kysely<unknown>);
        ctx.stdout.write(
          `schema current: ${run.current.length} migration(s) (${run.current.join(', ')}); ` +
            `${run.applied.length === 0 ? 'nothing to apply' : `applied now: ${run.applied.join(', ')}`}\n`,
        );
      } finally {
        await database.close();
      }
    });

  db.command('prune')
    .description('delete history older than TOCSIN_RETENTION_OBSERVATIONS_DAYS / _RAW_DAYS / _AUDIT_DAYS (never the latest observation of an ip:port, nor what a finding or incident references)')
    .option('--dry-run', 'count what would be deleted; delete nothing')
    .action(async (flags: { dryRun?: boolean }) => {
      const retention = readRetention(process.env);
      const now = new Date();
      const cut = { observations: cutoff(retention.observationsDays, now), raw: cutoff(retention.rawDays, now), audit: cutoff(retention.auditDays, now) };
      const database = await openDatabase(ctx.config());
      try {
        const c = await pruneRetention(database.db, cut, { dryRun: flags.dryRun === true });
        const verb = flags.dryRun === true ? 'would delete' : 'deleted';
        ctx.stdout.write(`${JSON.stringify({ dryRun: flags.dryRun === true, ...c })}\n`);
        ctx.stderr.write(`tocsin: prune ${verb}: ${c.observations} observation(s), ${c.attempts} attempt(s), ${c.responseLinks} raw response link(s), ` +
          `${c.blobs} unreferenced blob(s) (${c.blobBytes} bytes), ${c.webAudit + c.constituencyAudit} audit row(s); kept ${c.keptProtected} old observation(s) that are latest or referenced` +
          `${retention.observationsDays === null && retention.rawDays === null && retention.auditDays === null ? ' (no TOCSIN_RETENTION_* set: only unreferenced blobs are removed)' : ''}\n`);
        if (flags.dryRun !== true) ctx.stderr.write('tocsin: run `tocsin db vacuum` to give the space back to the planner and the disk\n');
      } finally {
        await database.close();
      }
    });

  db.command('vacuum')
    .description('VACUUM (ANALYZE) the tables that grow with history, so the national picture stays fast')
    .option('--full', 'VACUUM FULL: rewrite the tables to return disk space (locks each table while it runs)')
    .action(async (flags: { full?: boolean }) => {
      const database = await openDatabase(ctx.config());
      try {
        const done = await vacuumBigTables(database.db, { full: flags.full === true });
        ctx.stderr.write(`tocsin: vacuumed and analysed ${done.length} table(s): ${done.join(', ')}\n`);
      } finally {
        await database.close();
      }
    });

  db.command('stop')
    .description('stop the embedded PostgreSQL server now, even if another tocsin process uses it')
    .action(async () => {
      const config = ctx.config();
      if (config.databaseUrl !== null) {
        throw new TocsinError('TOCSIN_ARG_INVALID', 'TOCSIN_DATABASE_URL is set: tocsin does not manage that server, so there is nothing to stop');
      }
      const stopped = await stopEmbedded(config.home);
      ctx.stdout.write(stopped ? `embedded PostgreSQL in ${config.home}/pg stopped\n` : 'embedded PostgreSQL was not running\n');
    });
}
