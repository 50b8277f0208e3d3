/**
 * Version of the kit and revision of its rule set, printed in every report so that a result can be
 * traced to the rules that produced it (a CERT compares reports made months apart, by different
 * copies of the bundle).
 */
import { createHash } from 'node:crypto';
import { VERSION } from '../core/version.js';
import { CAMPAIGNS, FILE_RULES, LOG_RULES, SHIPPED_AUTH_FILES } from './rules.js';

/** The kit's version is the package's (the bundle cannot read package.json). */
export const KIT_VERSION = VERSION;

let revision: string | null = null;

/**
 * The rules revision: the first 12 hex digits of the SHA-256 of the rule table, the shipped-file list and
 * the campaign windows, serialised as JSON. Any change to a rule, a needle, a severity or a window
 * changes it; nothing else does.
 */
export function rulesRevision(): string {
  if (revision === null) {
    const text = JSON.stringify({ LOG_RULES, FILE_RULES, SHIPPED_AUTH_FILES, CAMPAIGNS });
    revision = createHash('sha256').update(text).digest('hex').slice(0, 12);
  }
  return revision;
}

/** One line naming the kit, its version and its rules revision. */
export function kitBanner(): string {
  return `tocsin-forensics ${KIT_VERSION}, rules ${rulesRevision()}`;
}
