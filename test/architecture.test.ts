/**
 * The dependency rules of docs/ARCHITECTURE.md §2, checked over every relative import in src/.
 * Also: every command file under src/cli is listed in the explicit registry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of a file, resolved to repo-relative paths without extension. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2];
    if (spec === undefined) continue;
    out.push(relative(root, resolve(dirname(file), spec)).replace(/\.(js|ts)$/, ''));
  }
  return out;
}

/** Which repo paths a module under `area` may import (prefix match). */
const RULES: ReadonlyArray<{ area: string; allowed: readonly string[] }> = [
  { area: 'src/core/', allowed: ['src/core/'] },
  { area: 'src/detectors/', allowed: ['src/detectors/', 'src/core/'] },
  { area: 'src/knowledge/', allowed: ['src/knowledge/', 'src/core/', 'src/platform/paths'] },
  { area: 'src/forensics/', allowed: ['src/forensics/', 'src/core/'] },
  { area: 'src/scan/', allowed: ['src/scan/', 'src/core/', 'src/knowledge/', 'src/detectors/', 'src/platform/net/'] },
  { area: 'src/platform/net/', allowed: ['src/platform/net/', 'src/core/', 'src/detectors/sdk', 'src/scan/store'] },
];

test('imports follow the layering rules', () => {
  const violations: string[] = [];
  for (const f of files(src)) {
    const rel = relative(root, f);
    const rule = RULES.find((r) => rel.startsWith(r.area));
    for (const imp of importsOf(f)) {
      if (imp.startsWith('src/cli/') && !rel.startsWith('src/cli/') && !rel.startsWith('src/bin/')) {
        violations.push(`${rel} imports ${imp} (nothing imports cli)`);
      }
      if (rule && !rule.allowed.some((a) => imp.startsWith(a))) violations.push(`${rel} imports ${imp}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the import scanner sees imports (guards the rule test against a broken regex)', () => {
  const seen = importsOf(join(src, 'bin', 'tocsin.ts'));
  assert.ok(seen.includes('src/cli/commands'), seen.join(','));
  assert.ok(seen.includes('src/core/errors'), seen.join(','));
});

test('every command file is listed in src/cli/commands.ts', () => {
  const registry = readFileSync(join(src, 'cli', 'commands.ts'), 'utf8');
  const missing: string[] = [];
  for (const name of readdirSync(join(src, 'cli'))) {
    if (!name.endsWith('.ts') || name.endsWith('.test.ts') || name === 'commands.ts') continue;
    const text = readFileSync(join(src, 'cli', name), 'utf8');
    if (!/export function register\(/.test(text)) continue;
    const mod = name.replace(/\.ts$/, '.js');
    if (!registry.includes(`'./${mod}'`)) missing.push(name);
  }
  assert.deepEqual(missing, []);
});
