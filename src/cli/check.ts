/** `tocsin check`: validate configuration and the knowledge base without side effects. */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { deploymentProblems, inspectConfig } from '../core/config.js';
import { TocsinError } from '../core/errors.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';
import { redactDatabaseUrl } from '../platform/db/connect.js';
import { loadExclusions } from '../scan/scope.js';
import { inspectRetention } from '../schedules/retention.js';
import { linkBase } from '../services/account-mail.js';
import { leaseSeconds, scheduleTickSeconds } from './worker.js';

/**
 * Settings read by one command only (serve, worker, campaign, prune) that would otherwise fail only when that command
 * runs, perhaps at 3 a.m. from a schedule: each is checked here as its command reads it. Every problem is listed.
 */
function commandSettingProblems(env: NodeJS.ProcessEnv): { problems: string[]; lines: string[] } {
  const problems: string[] = [];
  const lines: string[] = [];
  const attempt = (f: () => void): void => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof TocsinError)) throw e;
      problems.push(e.message);
    }
  };
  const web = env['TOCSIN_WEB_URL'];
  if (web !== undefined && web !== '') attempt(() => lines.push(`web address            ${linkBase(web)}`));
  const ack = env['TOCSIN_ACK_URL'];
  if (ack !== undefined && ack !== '' && !/^https?:\/\/[^\s]+$/.test(ack)) problems.push('TOCSIN_ACK_URL must be an http(s):// address');
  const secret = env['TOCSIN_ACK_SECRET'];
  if (secret !== undefined && secret !== '' && Buffer.byteLength(secret, 'utf8') < 16) problems.push('TOCSIN_ACK_SECRET must have at least 16 bytes');
  const secure = env['TOCSIN_WEB_SECURE_COOKIES'];
  if (secure !== undefined && secure !== 'true' && secure !== 'false') problems.push('TOCSIN_WEB_SECURE_COOKIES must be true or false');
  for (const name of ['TOCSIN_CERT_NAME', 'TOCSIN_FALLBACK_CONTACT', 'TOCSIN_ADMIN_EMAIL']) {
    const v = env[name];
    // These go into e-mail headers and pages: a line break would be a header injection by configuration.
    if (v !== undefined && /[\u0000-\u001f\u007f]/.test(v)) problems.push(`${name} must not contain control characters (line breaks included)`);
    else if (v !== undefined && v.length > 200) problems.push(`${name} is longer than 200 characters`);
  }
  for (const name of ['TOCSIN_FALLBACK_CONTACT', 'TOCSIN_ADMIN_EMAIL']) {
    const v = env[name];
    if (v !== undefined && v !== '' && !/^[^@\s<>]+@[^@\s<>]+$/.test(v)) problems.push(`${name}=${JSON.stringify(v.slice(0, 80))} is not an e-mail address`);
  }
  attempt(() => {
    const s = leaseSeconds(env);
    lines.push(`worker lease           ${s} s`);
  });
  attempt(() => {
    scheduleTickSeconds(env);
  });
  const retention = inspectRetention(env);
  problems.push(...retention.problems);
  const keep = (d: number | null): string => (d === null ? 'forever' : `${d} days`);
  lines.push(`retention              observations ${keep(retention.settings.observationsDays)}, raw responses ${keep(retention.settings.rawDays)}, audit ${keep(retention.settings.auditDays)}`);
  return { problems, lines };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .description('validate configuration (environment) and print the effective settings; no side effects')
    .action(async () => {
      // Every problem at once: the settings, the contact URL, each exclusion file (read and parsed as a scan would).
      const { config: c, problems: found } = inspectConfig();
      const commandSettings = commandSettingProblems(process.env);
      const problems = [...found, ...deploymentProblems(c), ...commandSettings.problems];
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
        ...commandSettings.lines,
      ];
      if (problems.length > 0) {
        ctx.stdout.write(`${lines.join('\n')}\n`);
        throw new TocsinError('TOCSIN_CONFIG_INVALID', `configuration has ${problems.length} problem(s)`, { details: problems });
      }
      ctx.stdout.write(`configuration OK\n${lines.join('\n')}\n`);
    });
}
