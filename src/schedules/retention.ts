/**
 * Retention settings (issue 11 §5), read from the environment and validated like the rest of the configuration
 * (src/core/config.ts): every problem listed, none silently ignored. Unset means "keep forever".
 *   TOCSIN_RETENTION_OBSERVATIONS_DAYS  observations (and their scan attempts) older than this are pruned, except
 *                                       the latest per (ip, port) and anything a finding or an incident references
 *   TOCSIN_RETENTION_RAW_DAYS           stored raw responses of observations older than this (same exceptions);
 *                                       blobs no observation references any more are removed whatever the age
 *   TOCSIN_RETENTION_AUDIT_DAYS         web API audit and constituency change audit rows older than this
 */
import { TocsinError } from '../core/errors.js';

export interface RetentionSettings {
  readonly observationsDays: number | null;
  readonly rawDays: number | null;
  readonly auditDays: number | null;
}

const NAMES = {
  observationsDays: 'TOCSIN_RETENTION_OBSERVATIONS_DAYS',
  rawDays: 'TOCSIN_RETENTION_RAW_DAYS',
  auditDays: 'TOCSIN_RETENTION_AUDIT_DAYS',
} as const;

/** Days from 1 to 36,500; the settings and every problem found. */
export function inspectRetention(env: NodeJS.ProcessEnv): { readonly settings: RetentionSettings; readonly problems: readonly string[] } {
  const problems: string[] = [];
  const read = (name: string): number | null => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return null;
    if (!/^\d{1,6}$/.test(raw.trim())) {
      problems.push(`${name}=${JSON.stringify(raw.slice(0, 40))} is not a whole number of days (expected 1..36500)`);
      return null;
    }
    const n = Number(raw.trim());
    if (n < 1 || n > 36_500) {
      problems.push(`${name}=${n} is out of range (expected 1..36500)`);
      return null;
    }
    return n;
  };
  const settings = { observationsDays: read(NAMES.observationsDays), rawDays: read(NAMES.rawDays), auditDays: read(NAMES.auditDays) };
  return { settings, problems };
}

/** The settings, or TOCSIN_CONFIG_INVALID listing every problem. */
export function readRetention(env: NodeJS.ProcessEnv): RetentionSettings {
  const { settings, problems } = inspectRetention(env);
  if (problems.length > 0) throw new TocsinError('TOCSIN_CONFIG_INVALID', `retention settings have ${problems.length} problem(s)`, { details: problems });
  return settings;
}

/** The cut-off instant of a setting at `now`, or null when it is unset. */
export function cutoff(days: number | null, now: Date): Date | null {
  return days === null ? null : new Date(now.getTime() - days * 86_400_000);
}
