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

/** File extensions that name an output format, each to the command's format (e.g. `.csv` → csv). */
export type FormatByExtension<F extends string> = Readonly<Partial<Record<'.csv' | '.jsonl' | '.ndjson' | '.json' | '.txt', F>>>;

/**
 * The output format: `--format` when given, else the one the `--output` file's extension names (`x.csv` gets
 * CSV, not JSONL under a .csv name), else the command's default. A `--format` that contradicts a data-format
 * extension (.csv, .jsonl, .ndjson, .json) is refused rather than writing one format under another's name;
 * `.txt` only suggests the human format and contradicts nothing.
 * The returned text is still to be validated by the command (its own list of formats).
 * @throws TocsinError TOCSIN_ARG_INVALID on a contradiction.
 */
export function outputFormat<F extends string>(flag: string | undefined, output: string | undefined, byExt: FormatByExtension<F>, fallback: F): string {
  const dot = output === undefined ? -1 : output.lastIndexOf('.');
  const ext = output === undefined || dot <= output.lastIndexOf('/') ? '' : output.slice(dot).toLowerCase();
  const implied = Object.hasOwn(byExt, ext) ? byExt[ext as keyof FormatByExtension<F>] : undefined;
  if (flag === undefined) return implied ?? fallback;
  if (implied !== undefined && ext !== '.txt' && flag !== implied) {
    const shown = (output ?? '').length > 80 ? `…${(output ?? '').slice(-79)}` : output ?? '';
    throw new TocsinError(
      'TOCSIN_ARG_INVALID',
      `--format ${JSON.stringify(flag.slice(0, 20))} contradicts --output ${JSON.stringify(shown)} (a ${ext} file gets ${implied}): drop --format, or name the file for the format`,
    );
  }
  return flag;
}
