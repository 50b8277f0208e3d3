/**
 * Exchange build numbers: "15.1.2176.9" (short form, as Microsoft Learn prints them and as X-OWA-Version
 * sends them) or "15.01.2176.009" (long form, as Get-ExchangeServer and some tables print them).
 * Parsing is strict and total: anything that is not 3 or 4 dot-separated decimal numbers is refused,
 * because build strings come from scanned hosts and are hostile text. Pure; no I/O.
 */
import { TocsinError } from './errors.js';

/** A parsed build. `revision` is null when only major.minor.build was seen (e.g. the OWA asset path). */
export interface BuildNumber {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
  readonly revision: number | null;
}

/** Longest input we look at; a real build is at most 15 characters ("15.02.2562.046"). */
const MAX_INPUT = 32;
/** Windows version components are 16-bit; anything larger is not a build number. */
const MAX_PART = 65535;
const SHAPE = /^(\d{1,5})\.(\d{1,5})\.(\d{1,5})(?:\.(\d{1,5}))?$/;

/** Parses a build, or returns null. Leading zeros are accepted (long form); surrounding whitespace is ignored. */
export function tryParseBuildNumber(text: string): BuildNumber | null {
  if (typeof text !== 'string' || text.length > MAX_INPUT) return null;
  const m = SHAPE.exec(text.trim());
  if (m === null) return null;
  const parts = [m[1], m[2], m[3], m[4]].map((p) => (p === undefined ? null : Number.parseInt(p, 10)));
  if (parts.some((p) => p !== null && p > MAX_PART)) return null;
  return { major: parts[0] ?? 0, minor: parts[1] ?? 0, build: parts[2] ?? 0, revision: parts[3] ?? null };
}

/**
 * Parses a build or throws TOCSIN_KB_UNKNOWN_BUILD naming the (escaped, capped) input.
 * Use for user input; for scanned text prefer {@link tryParseBuildNumber}.
 */
export function parseBuildNumber(text: string): BuildNumber {
  const b = tryParseBuildNumber(text);
  if (b === null) {
    throw new TocsinError('TOCSIN_KB_UNKNOWN_BUILD', `not an Exchange build number: ${JSON.stringify(String(text).slice(0, MAX_INPUT))}`);
  }
  return b;
}

/**
 * Orders builds numerically, part by part. A missing revision sorts before revision 0, so the
 * CU-level "15.1.2176" is below every "15.1.2176.x".
 */
export function compareBuilds(a: BuildNumber, b: BuildNumber): number {
  return a.major - b.major || a.minor - b.minor || a.build - b.build || (a.revision ?? -1) - (b.revision ?? -1);
}

/** Digits and dots, short form: "15.1.2176.9" (or "15.1.2176" without a revision). */
export function formatBuild(b: BuildNumber): string {
  const head = `${b.major}.${b.minor}.${b.build}`;
  return b.revision === null ? head : `${head}.${b.revision}`;
}

/** Long form as Exchange prints it: "15.01.2176.009". A missing revision prints as "000". */
export function formatBuildLong(b: BuildNumber): string {
  return `${b.major}.${String(b.minor).padStart(2, '0')}.${String(b.build).padStart(4, '0')}.${String(b.revision ?? 0).padStart(3, '0')}`;
}

/**
 * The cumulative-update key "major.minor.build" ("15.1.2176"): every CU (and every 2010/2007 update
 * rollup) has its own third component, and security updates only change the revision.
 */
export function cuKeyOf(b: BuildNumber): string {
  return `${b.major}.${b.minor}.${b.build}`;
}

/** Normalises any accepted spelling to the short form, or returns null. */
export function normaliseBuild(text: string): string | null {
  const b = tryParseBuildNumber(text);
  return b === null ? null : formatBuild(b);
}
