/** `tocsin check`: validate configuration and the knowledge base without side effects. */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { deploymentProblems, inspectConfig } from '../core/config.js';
import { TocsinError } from '../core/errors.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';
import { redactDatabaseUrl } from '../platform/db/connect.js';
import { loadExclusions } from '../scan/scope.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .description('validate configuration (environment) and print the effective settings; no side effects')
    .action(async () => {
      // Every problem at once: the settings, the contact URL, each exclusion file (read and parsed as a scan would).
      const { config: c, problems: found } = inspectConfig();
      const problems = [...found, ...deploymentProblems(c)];
      for (const f of c.excludeFiles) {
        try {
          await loadExclusions([f]);
        } catch (e) {
          if (!(e instanceof TocsinError)) throw e;
          problems.push(`TOCSIN_EXCLUDE_FILES: ${e.message}`, ...e.details.slice(1).map((d) => `TOCSIN_EXCLUDE_FILES: ${d}`));
        }
      }
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
      if (problems.length > 0) {
        ctx.stdout.write(`${lines.join('\n')}\n`);
        throw new TocsinError('TOCSIN_CONFIG_INVALID', `configuration has ${problems.length} problem(s)`, { details: problems });
      }
      ctx.stdout.write(`configuration OK\n${lines.join('\n')}\n`);
    });
}
