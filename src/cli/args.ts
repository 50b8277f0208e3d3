/**
 * Shared argument parsing for the CLI commands. Pure.
 */
import { TocsinError } from '../core/errors.js';

/**
 * A whole-number flag value within [min, max] (decimal digits only: no sign, exponent, hex or fraction,
 * which `Number()` would otherwise accept). `name` is the flag as the user typed it, e.g. `--workers`.
 * An absent value (undefined) stays undefined so callers can fall back to the configuration.
 * @throws TocsinError TOCSIN_ARG_INVALID when the value is not such a number.
 */
export function parseIntFlag(name: string, raw: string, min: number, max: number): number;
export function parseIntFlag(name: string, raw: string | undefined, min: number, max: number): number | undefined;
export function parseIntFlag(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    const shown = raw.length > 40 ? `${raw.slice(0, 40)}…` : raw;
    throw new TocsinError('TOCSIN_ARG_INVALID', `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(shown)}`);
  }
  return n;
}
