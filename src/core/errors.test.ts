import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderErrorCatalogue } from './errors-doc.js';
import { ERROR_CODES, TocsinError, type ErrorCode } from './errors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

test('docs/errors.md is generated from the registry and up to date (run: npx tsx scripts/gen-errors-doc.ts)', () => {
  assert.equal(readFileSync(join(root, 'docs', 'errors.md'), 'utf8'), renderErrorCatalogue());
});

test('HTTP statuses follow one policy: internal errors are 5xx; user errors 4xx unless the fault is the server\'s', () => {
  // user-kind codes whose cause is on the server side (its configuration, its storage), not in a request
  const serverSide: readonly ErrorCode[] = ['TOCSIN_CONFIG_INVALID', 'TOCSIN_HOME_UNUSABLE', 'TOCSIN_MAIL_UNCONFIGURED'];
  for (const code of CODES) {
    const { kind, http } = ERROR_CODES[code];
    if (kind === 'internal' || serverSide.includes(code)) assert.ok(http >= 500, `${code} ${http}`);
    else assert.ok(http >= 400 && http < 500, `${code} ${http}`);
  }
  assert.equal(ERROR_CODES.TOCSIN_SCAN_NOT_FOUND.http, 404);
  assert.equal(ERROR_CODES.TOCSIN_SCAN_BUSY.http, 409);
  assert.equal(ERROR_CODES.TOCSIN_DB_LOST.http, 503);
  assert.equal(new TocsinError('TOCSIN_ARG_INVALID', 'x').httpStatus, 400);
});

test('forensics errors exit 2 (the kit\'s documented contract), every other code a sysexits-style status', () => {
  for (const code of CODES) {
    const { exit } = ERROR_CODES[code];
    if (code.startsWith('TOCSIN_FORENSICS_')) assert.equal(exit, 2, code);
    else assert.ok(exit >= 64 && exit <= 78, `${code} exits ${exit}`);
  }
});

/** Every .ts file under src/ except tests, the registry and its doc renderer. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !/core[\\/]errors(-doc)?\.ts$/.test(p)) out.push(p);
  }
  return out;
}

test('every registered code is raised somewhere in src/ (no dead codes in the docs)', () => {
  const text = sources(join(root, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
  // bin/tocsin.ts prints TOCSIN_INTERNAL itself (with the stack) rather than raising it: a word match counts.
  assert.deepEqual(CODES.filter((c) => !new RegExp(`\\b${c}\\b`).test(text)), []);
});
