/**
 * Reading target lists: arguments, `@file` and `-` (stdin), one target per line in files, `#` comments and
 * blank lines allowed. Every problem is collected and named with its file and line before anything is sent.
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { TocsinError } from '../core/errors.js';
import { parseTarget, quote, type TargetSpec } from './targets-grammar.js';
import { DEFAULT_MAX_ADDRESSES, TargetSet } from './targets-expand.js';

function throwProblems(problems: readonly string[]): never {
  const shown = problems.length > 20 ? [...problems.slice(0, 20), `... and ${problems.length - 20} more`] : problems;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
  // One problem is said once, in the message; several are listed as details too.
  throw new TocsinError('TOCSIN_TARGET_INVALID', `${problems[0] ?? 'invalid target'}${more}`, { details: problems.length > 1 ? shown : [] });
}

/** Splits a target file into (token, line number) pairs; `#` comments, blank lines and CRLF are fine. */
function* fileTokens(text: string): Generator<[string, number]> {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0; // BOM
  let line = 1;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let s = text.slice(start, end);
    const hash = s.indexOf('#');
    if (hash >= 0) s = s.slice(0, hash);
    s = s.trim();
    if (s !== '') yield [s, line];
    line++;
    start = end + 1;
  }
}

async function readStream(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

export interface ReadTargetsOptions {
  /** Where `-` reads from (default process.stdin). */
  readonly stdin?: Readable;
  /** Cap on the total expansion (default DEFAULT_MAX_ADDRESSES). */
  readonly maxAddresses?: number;
}

/**
 * Expands `@file` and `-`, validates every target and the total size. All problems are collected;
 * throws TOCSIN_TARGET_INVALID naming the first (with file and line) and listing all in `details`,
 * or TOCSIN_INPUT_UNREADABLE for a file that cannot be read. Nothing is resolved or sent here.
 */
export async function readTargetSpecs(args: readonly string[], opts: ReadTargetsOptions = {}): Promise<TargetSpec[]> {
  const out: TargetSpec[] = [];
  const problems: string[] = [];
  const add = (token: string, where: string, fromFile: boolean): void => {
    if (fromFile && (token.startsWith('@') || token === '-')) {
      problems.push(`${where}: ${quote(token)}: a target file cannot include other files or stdin`);
      return;
    }
    const p = parseTarget(token);
    if ('problem' in p) problems.push(`${where}: ${p.problem}`);
    else out.push({ text: p.text, kind: p.kind, where });
  };
  let stdinUsed = false;
  for (const [i, raw] of args.entries()) {
    const a = raw.trim();
    if (a === '-' || a === '@-') {
      if (stdinUsed) continue;
      stdinUsed = true;
      const text = await readStream(opts.stdin ?? process.stdin);
      for (const [tok, line] of fileTokens(text)) add(tok, `stdin:${line}`, true);
    } else if (a.startsWith('@')) {
      const path = a.slice(1);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        throw new TocsinError('TOCSIN_INPUT_UNREADABLE', `cannot read target file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
      }
      for (const [tok, line] of fileTokens(text)) add(tok, `${path}:${line}`, true);
    } else if (a === '') {
      problems.push(`argument ${i + 1}: empty target`);
    } else add(a, `argument ${i + 1}`, false);
  }
  if (problems.length > 0) throwProblems(problems);
  if (out.length === 0) throw new TocsinError('TOCSIN_TARGET_INVALID', 'no targets given (the inputs held only comments or blank lines)');
  // refuse absurd totals before anything is resolved or sent
  TargetSet.from(out.map((s) => s.text), { maxAddresses: opts.maxAddresses ?? DEFAULT_MAX_ADDRESSES });
  return out;
}

/** Same as readTargetSpecs, returning canonical texts (what a stored scan plan keeps). */
export async function loadTargets(args: readonly string[], stdin?: Readable, maxAddresses?: number): Promise<readonly string[]> {
  const specs = await readTargetSpecs(args, {
    ...(stdin === undefined ? {} : { stdin }),
    ...(maxAddresses === undefined ? {} : { maxAddresses }),
  });
  return specs.map((s) => s.text);
}
