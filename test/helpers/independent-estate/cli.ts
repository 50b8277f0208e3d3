/**
 * Runs the `tocsin` CLI the way a user does: a child process with plain `node` on the compiled entry
 * point (`dist/src/bin/tocsin.js`, built by `npm ci` through the prepare script).
 *
 * Outside CI, while the sources are being edited, a missing or stale build falls back to running the
 * TypeScript entry point through tsx (same code, not yet compiled). Under CI=true a missing or stale
 * build is a failure: the acceptance test is about the compiled CLI.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const COMPILED = join(ROOT, 'dist', 'src', 'bin', 'tocsin.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

export interface CliEntry {
  /** Arguments for `node` before the CLI's own arguments. */
  readonly nodeArgs: readonly string[];
  readonly compiled: boolean;
}

export function cliEntry(): CliEntry {
  const fresh = existsSync(COMPILED) && statSync(COMPILED).mtimeMs >= newestMtime(join(ROOT, 'src'));
  if (fresh) return { nodeArgs: [COMPILED], compiled: true };
  if (process.env.CI === 'true') {
    throw new Error(`${existsSync(COMPILED) ? 'stale' : 'missing'} compiled CLI dist/src/bin/tocsin.js: run \`npm run build\` (npm ci does it)`);
  }
  return { nodeArgs: ['--import', 'tsx', join(ROOT, 'src', 'bin', 'tocsin.ts')], compiled: false };
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** Runs `tocsin ARGS` to completion (killed after `timeoutMs`, which then shows as a signal). */
export function runCli(args: readonly string[], env: Readonly<Record<string, string>>, timeoutMs: number): Promise<CliResult> {
  const entry = cliEntry();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...entry.nodeArgs, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
  });
}

/** RFC 4180 parser (quoted cells, doubled quotes, CRLF or LF rows); for checking the CLI's CSV. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i++;
        continue;
      }
      cell += c;
      i++;
      continue;
    }
    if (c === '"' && cell === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      row.push(cell);
      cell = '';
      i++;
    } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i += c === '\r' ? 2 : 1;
    } else {
      cell += c;
      i++;
    }
  }
  if (quoted) throw new Error('CSV ends inside a quoted cell');
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}
