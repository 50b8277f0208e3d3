/** `tocsin check`: validate configuration and the knowledge base without side effects. */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { loadExchangeKb } from '../knowledge/exchange/index.js';
import { redactDatabaseUrl } from '../platform/db/connect.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .description('validate configuration (environment) and print the effective settings; no side effects')
    .action(() => {
      const c = ctx.config();
      // Loading validates the in-repo knowledge base and throws TOCSIN_KB_DATA_INVALID listing every problem.
      const kb = loadExchangeKb();
      const lines = [
        `TOCSIN_HOME            ${c.home}`,
        `database               ${c.databaseUrl === null ? `embedded PostgreSQL in ${c.home}/pg` : redactDatabaseUrl(c.databaseUrl)}`,
        `User-Agent             ${c.userAgent}`,
        `contact URL            ${c.contactUrl}`,
        `exclusion files        ${c.excludeFiles.length === 0 ? '(none)' : c.excludeFiles.join(', ')}`,
        `rate limit             ${c.rateLimit === 0 ? 'unlimited' : `${c.rateLimit}/s`}; per network ${c.ratePerNetwork === 0 ? 'unlimited' : `${c.ratePerNetwork}/s`}`,
        `concurrency            ${c.concurrency} hosts; workers ${c.workers === 0 ? 'auto' : c.workers}`,
        `knowledge base         ${kb.builds.length} Exchange builds, ${kb.cves.length} CVEs/advisories (data ${kb.version})`,
      ];
      ctx.stdout.write(`configuration OK\n${lines.join('\n')}\n`);
    });
}
