/**
 * Where the package lives on disk, so data files shipped in the package (data/exchange/*.csv) are found
 * the same way from the TypeScript sources under tsx (src/platform/paths.ts) and from the compiled
 * output (dist/src/platform/paths.js), and from an installed copy under node_modules/tocsin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errno, TocsinError } from '../core/errors.js';

const PACKAGE_NAME = 'tocsin';
let cached: string | undefined;

/**
 * The directory holding the package.json whose name is "tocsin", found by walking up from this file.
 * Throws TOCSIN_PACKAGE_BROKEN if none is found (a broken installation), since every caller needs a real path.
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  cached = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  return cached;
}

/** Walks up from `start`; exported for tests. */
export function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && packageName(candidate) === PACKAGE_NAME) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new TocsinError('TOCSIN_PACKAGE_BROKEN', `no package.json named "${PACKAGE_NAME}" above ${start}`);
    dir = parent;
  }
}

/** Absolute path of a file shipped in the package, e.g. dataPath('exchange', 'builds.csv'). */
export function dataPath(...parts: readonly string[]): string {
  return join(packageRoot(), 'data', ...parts);
}

function packageName(file: string): string | null {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'name' in parsed && typeof parsed.name === 'string') return parsed.name;
    return null;
  } catch {
    // An unreadable or malformed package.json on the way up is not ours; keep walking.
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// TOCSIN_HOME: created on first use; every failure to use it is a coded error naming the path.

/**
 * Create `dir` and its missing parents, one level at a time. Not `mkdir(dir, { recursive: true })`: on
 * Node 20 that loops forever (100% CPU) when the kernel answers ENOENT for a parent that exists, as /proc
 * does (`TOCSIN_HOME=/proc/nope`). Throws the first real error (ENOENT, ENOTDIR, EACCES, EROFS, ENOSPC...).
 */
export async function ensureDir(dir: string, mode = 0o755): Promise<void> {
  const missing: string[] = [];
  let d = dir;
  for (;;) {
    try {
      const s = await stat(d);
      // Shaped like the kernel's own ENOTDIR, so callers code it with the rest (homeFsError → TOCSIN_HOME_UNUSABLE).
      if (!s.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, ${d}`), { code: 'ENOTDIR', path: d });
      break;
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
      missing.push(d);
      const parent = dirname(d);
      if (parent === d) break;
      d = parent;
    }
  }
  for (const m of missing.reverse()) {
    try {
      await mkdir(m, { mode });
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
    }
  }
}


/** File-system errors that mean "the environment", not a bug: each becomes a coded error. */
const UNUSABLE = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EEXIST']);

/**
 * A file-system failure under TOCSIN_HOME as a coded error: ENOSPC/EDQUOT → TOCSIN_DISK_FULL ("disk full at
 * PATH"), EIO → TOCSIN_DB_WRITE, a missing, read-only, forbidden or non-directory path → TOCSIN_HOME_UNUSABLE.
 * Anything else (and TocsinErrors) is returned as it is.
 */
export function homeFsError(e: unknown, home: string, what: string): unknown {
  if (e instanceof TocsinError) return e;
  const code = errno(e);
  if (code === undefined) return e;
  const path = e instanceof Error && 'path' in e && typeof e.path === 'string' ? e.path : home;
  const why = e instanceof Error ? e.message : String(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new TocsinError('TOCSIN_DISK_FULL', `disk full at ${path} (${what})`, { details: [why, `TOCSIN_HOME=${home}`], cause: e });
  }
  if (code === 'EIO') return new TocsinError('TOCSIN_DB_WRITE', `I/O error at ${path} (${what})`, { details: [why, `TOCSIN_HOME=${home}`], cause: e });
  if (UNUSABLE.has(code)) {
    const reason = code === 'EROFS' ? 'read-only file system' : code === 'ENOTDIR' ? 'a part of the path is not a directory'
      : code === 'ENOENT' ? 'cannot be created here' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code;
    return new TocsinError('TOCSIN_HOME_UNUSABLE', `TOCSIN_HOME=${home} cannot be used: ${path}: ${reason} (${what})`, { details: [why], cause: e });
  }
  return e;
}
