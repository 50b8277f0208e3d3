/**
 * Where the package lives on disk, so data files shipped in the package (data/exchange/*.csv) are found
 * the same way from the TypeScript sources under tsx (src/platform/paths.ts) and from the compiled
 * output (dist/src/platform/paths.js), and from an installed copy under node_modules/tocsin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'tocsin';
let cached: string | undefined;

/**
 * The directory holding the package.json whose name is "tocsin", found by walking up from this file.
 * Throws if none is found (a broken installation), since every caller needs a real path.
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
    if (parent === dir) throw new Error(`no package.json named "${PACKAGE_NAME}" above ${start}`);
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
