/**
 * Configuration: read from the environment once, validated at start.
 * Every problem is collected (not just the first) so `tocsin check` can list them all.
 * Pure: takes an env object, returns a value or the list of problems.
 */
import { homedir } from 'node:os';
import { join, isAbsolute } from 'node:path';
import { TocsinError } from './errors.js';
import { parseMailFrom, parseSmtpUrl } from './smtp-url.js';

export interface TocsinConfig {
  /** Directory for embedded state (embedded PostgreSQL data, lab certificates, outputs). */
  readonly home: string;
  /** `postgres://` URL of a real server; null means the embedded default. */
  readonly databaseUrl: string | null;
  /** Identifying User-Agent sent with every probe. */
  readonly userAgent: string;
  /** Where a scanned party can learn about the scan and ask to opt out. */
  readonly contactUrl: string;
  /** Files with one address/CIDR per line that are never scanned. */
  readonly excludeFiles: readonly string[];
  /** Global probe rate (new connections per second); 0 = unlimited. */
  readonly rateLimit: number;
  /** New connections per second into one /24 (IPv4) or /64 (IPv6). */
  readonly ratePerNetwork: number;
  /** Concurrent hosts in flight. */
  readonly concurrency: number;
  /** Scan worker threads; 0 = automatic. */
  readonly workers: number;
  /** TOCSIN_SMTP_URL: the relay warnings go through (grammar in smtp-url.ts); null = not configured. */
  readonly smtpUrl: string | null;
  /** TOCSIN_MAIL_FROM: the sender of warnings (`cert@example.org` or `CERT <cert@example.org>`); null = not set. */
  readonly mailFrom: string | null;
}

export const DEFAULT_CONTACT_URL = 'https://tocsin.example.org/scanning';

function defaultHome(env: NodeJS.ProcessEnv, uid: number): string {
  // The embedded PostgreSQL runs as an unprivileged user when we are root, and /root is mode 700,
  // so root's state lives under /var/lib where that user can reach it.
  if (uid === 0) return '/var/lib/tocsin';
  const xdg = env.XDG_DATA_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share'), 'tocsin');
}

function intSetting(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw.trim())) {
    problems.push(`${name}=${JSON.stringify(raw)} is not a whole number (expected ${min}..${max})`);
    return def;
  }
  const n = Number(raw.trim());
  if (n < min || n > max) problems.push(`${name}=${n} is out of range (expected ${min}..${max})`);
  return n;
}

/** The configuration and every problem found in it (readConfig throws when there is one; `tocsin check` lists them). */
export function inspectConfig(
  env: NodeJS.ProcessEnv = process.env,
  uid: number = process.getuid?.() ?? 1000,
): { readonly config: TocsinConfig; readonly problems: readonly string[] } {
  const problems: string[] = [];
  const home = env.TOCSIN_HOME && env.TOCSIN_HOME !== '' ? env.TOCSIN_HOME : defaultHome(env, uid);
  if (!isAbsolute(home)) problems.push(`TOCSIN_HOME=${JSON.stringify(home)} must be an absolute path`);

  const rawUrl = env.TOCSIN_DATABASE_URL ?? env.DATABASE_URL ?? '';
  let databaseUrl: string | null = null;
  if (rawUrl !== '') {
    try {
      const u = new URL(rawUrl);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
        problems.push(`TOCSIN_DATABASE_URL must start with postgres:// (got ${u.protocol}//)`);
      } else databaseUrl = rawUrl;
    } catch {
      problems.push('TOCSIN_DATABASE_URL is not a valid URL (expected postgres://user:pass@host:5432/db)');
    }
  }

  const contactUrl = env.TOCSIN_CONTACT_URL && env.TOCSIN_CONTACT_URL !== '' ? env.TOCSIN_CONTACT_URL : DEFAULT_CONTACT_URL;
  if (!/^(https?:\/\/|mailto:)/.test(contactUrl)) problems.push('TOCSIN_CONTACT_URL must be an http(s):// or mailto: URL');
  const userAgent = env.TOCSIN_USER_AGENT && env.TOCSIN_USER_AGENT !== ''
    ? env.TOCSIN_USER_AGENT
    : `Mozilla/5.0 (compatible; Tocsin/0.1; +${contactUrl})`;
  if (/[\r\n\0]/.test(userAgent)) problems.push('TOCSIN_USER_AGENT must not contain control characters');

  const excludeFiles = (env.TOCSIN_EXCLUDE_FILES ?? '').split(/[,:]/).map((s) => s.trim()).filter((s) => s !== '');
  const rateLimit = intSetting(env, 'TOCSIN_RATE_LIMIT', 0, 0, 10_000_000, problems);
  const ratePerNetwork = intSetting(env, 'TOCSIN_RATE_PER_NETWORK', 0, 0, 10_000_000, problems);
  const concurrency = intSetting(env, 'TOCSIN_CONCURRENCY', 2048, 1, 100_000, problems);
  const workers = intSetting(env, 'TOCSIN_WORKERS', 0, 0, 64, problems);

  // Mail settings are optional (only campaigns need them) but, when set, must be valid from the start.
  const smtpUrl = env.TOCSIN_SMTP_URL && env.TOCSIN_SMTP_URL !== '' ? env.TOCSIN_SMTP_URL : null;
  if (smtpUrl !== null) problems.push(...parseSmtpUrl(smtpUrl).problems);
  const mailFrom = env.TOCSIN_MAIL_FROM && env.TOCSIN_MAIL_FROM !== '' ? env.TOCSIN_MAIL_FROM : null;
  if (mailFrom !== null) problems.push(...parseMailFrom(mailFrom).problems);

  return { config: { home, databaseUrl, userAgent, contactUrl, excludeFiles, rateLimit, ratePerNetwork, concurrency, workers, smtpUrl, mailFrom }, problems };
}

export function readConfig(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 1000): TocsinConfig {
  const { config, problems } = inspectConfig(env, uid);
  if (problems.length > 0) {
    throw new TocsinError('TOCSIN_CONFIG_INVALID', `configuration has ${problems.length} problem(s)`, { details: problems });
  }
  return config;
}

/**
 * What must be set before scanning anyone else's hosts, beyond a valid configuration: the contact URL that
 * every scanned host sees in the User-Agent must be the operator's own, not the shipped example. (Scans still
 * run with it, so the lab and the demo work out of the box; `tocsin check` fails until it is set.)
 */
export function deploymentProblems(config: TocsinConfig): string[] {
  const problems: string[] = [];
  if (config.contactUrl === DEFAULT_CONTACT_URL || /^(https?:\/\/|mailto:)([^/]*[.@])?example\.(org|com|net)([/:]|$)/i.test(config.contactUrl)) {
    const what = config.contactUrl === DEFAULT_CONTACT_URL ? 'not set: the shipped example' : 'an example URL:';
    problems.push(`TOCSIN_CONTACT_URL is ${what} ${config.contactUrl} would be sent to every scanned host; set it to the page where scanned parties learn about your scans and can opt out`);
  }
  return problems;
}
