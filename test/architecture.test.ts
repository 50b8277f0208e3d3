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
    if (name === 'node_modules' || name === 'certs' || name === 'fixtures') continue;
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

/**
 * Which repo paths a module under `area` may import (prefix match). Every folder of src/ and lab/ has a
 * rule (a test below fails on a folder without one), and there are no per-file exceptions.
 * Composition roots (cli, bin) may import anything; nothing imports them. Adapters (platform) implement
 * the ports their consumers declare (scan/ports.ts) and import nothing else of the application.
 */
export const RULES: ReadonlyArray<{ area: string; allowed: readonly string[] }> = [
  { area: 'src/core/', allowed: ['src/core/'] },
  { area: 'src/products/', allowed: ['src/products/', 'src/core/', 'src/platform/paths'] },
  { area: 'src/forensics/', allowed: ['src/forensics/', 'src/core/'] },
  { area: 'src/platform/paths', allowed: ['src/core/'] },
  { area: 'src/platform/net/', allowed: ['src/platform/net/', 'src/core/'] },
  { area: 'src/platform/mail/', allowed: ['src/platform/mail/', 'src/core/'] },
  // Clients of third-party feed APIs (Shadowserver): like net, they see only core.
  { area: 'src/platform/feeds/', allowed: ['src/platform/feeds/', 'src/core/'] },
  // Chart rendering (vega-lite, vega, resvg): generic panels of lines, sees only core.
  { area: 'src/platform/charts/', allowed: ['src/platform/charts/', 'src/core/'] },
  { area: 'src/platform/db/', allowed: ['src/platform/db/', 'src/core/', 'src/platform/paths', 'src/scan/ports', 'src/constituency/', 'src/attribution/', 'src/ingest/', 'src/findings/', 'src/stats/'] },
  { area: 'src/scan/', allowed: ['src/scan/', 'src/core/', 'src/products/'] },
  // Issue 8's pure domains: no I/O adapters, no services.
  { area: 'src/constituency/', allowed: ['src/constituency/', 'src/core/'] },
  { area: 'src/attribution/', allowed: ['src/attribution/', 'src/constituency/', 'src/core/'] },
  { area: 'src/ingest/', allowed: ['src/ingest/', 'src/constituency/', 'src/core/', 'src/products/'] },
  // Issue 9's findings lifecycle: pure rules (core and its contracts only).
  { area: 'src/findings/', allowed: ['src/findings/', 'src/core/'] },
  // Issue 9's campaigns: pure rules (selection, recipients, templates, tokens, outbox states); the service drives I/O.
  { area: 'src/campaigns/', allowed: ['src/campaigns/', 'src/core/'] },
  // Issue 9's patch curve: pure series, quantiles and survival over counts the stats store aggregates.
  { area: 'src/stats/', allowed: ['src/stats/', 'src/core/'] },
  // Issue 10's incident reports: pure validation, triage state machine and SLA clocks.
  { area: 'src/incidents/', allowed: ['src/incidents/', 'src/core/'] },
  // Issue 10 §6's exports: MISP events, STIX 2.1 bundles, CSV/JSONL lines built from plain inputs; pure.
  { area: 'src/exports/', allowed: ['src/exports/', 'src/core/'] },
  // Issue 11's schedules: the cadence policy (which targets are due, in which order), pure.
  { area: 'src/schedules/', allowed: ['src/schedules/', 'src/core/'] },
  { area: 'src/services/', allowed: ['src/services/', 'src/scan/', 'src/products/', 'src/platform/', 'src/core/', 'src/forensics/', 'src/constituency/', 'src/attribution/', 'src/ingest/', 'src/findings/', 'src/campaigns/', 'src/stats/', 'src/schedules/', 'src/exports/', 'src/incidents/'] },
  // Issue 10's web layer: HTTP only; every rule and every database access goes through the services (accounts.ts
  // exports the db handle type), so a route cannot read a table without the caller's scope.
  { area: 'src/web/', allowed: ['src/web/', 'src/services/', 'src/core/'] },
  { area: 'src/cli/', allowed: ['src/', 'lab/'] },
  { area: 'src/bin/', allowed: ['src/cli/', 'src/core/', 'src/platform/db/'] },
  { area: 'lab/', allowed: ['lab/', 'src/core/', 'src/products/', 'src/platform/paths'] },
];

/** Code files (src/ and lab/, tests excluded): every one must fall under a rule. */
function codeFiles(): string[] {
  return [...files(src), ...files(join(root, 'lab'))].map((f) => relative(root, f)).sort();
}

/** Imports that break a rule, as "file imports target" lines. Exported so a test can prove it catches a break. */
export function violationsOf(graph: ReadonlyArray<{ file: string; imports: readonly string[] }>): string[] {
  const violations: string[] = [];
  for (const { file: rel, imports } of graph) {
    const rule = RULES.find((r) => rel.startsWith(r.area));
    if (!rule) {
      violations.push(`${rel} falls under no rule`);
      continue;
    }
    for (const imp of imports) {
      if ((imp.startsWith('src/cli/') || imp.startsWith('src/bin/')) && !rel.startsWith('src/cli/') && !rel.startsWith('src/bin/')) {
        violations.push(`${rel} imports ${imp} (nothing imports the entry points)`);
      } else if (imp.startsWith('lab/') && !rel.startsWith('lab/') && !/^src\/cli\/(lab|demo)$/.test(rel.replace(/\.ts$/, ''))) {
        violations.push(`${rel} imports ${imp} (only the lab and demo commands use the lab)`);
      } else if (!rule.allowed.some((a) => imp.startsWith(a))) {
        violations.push(`${rel} imports ${imp}`);
      }
    }
  }
  return violations;
}

function graph(): Array<{ file: string; imports: string[] }> {
  return [...files(src), ...files(join(root, 'lab'))].map((f) => ({ file: relative(root, f), imports: importsOf(f) }));
}

test('imports follow the layering rules', () => {
  assert.deepEqual(violationsOf(graph()), []);
});

test('every code file falls under a rule', () => {
  assert.deepEqual(codeFiles().filter((f) => !RULES.some((r) => f.startsWith(r.area))), []);
});

test('the rule check fails when a rule is broken', () => {
  const broken = [
    { file: 'src/core/ip.ts', imports: ['src/platform/db/connect'] },
    { file: 'src/platform/net/http-probe.ts', imports: ['src/scan/ports'] },
    { file: 'src/scan/engine.ts', imports: ['src/cli/scan'] },
    { file: 'src/services/scan-service.ts', imports: ['lab/server'] },
    { file: 'src/new-folder/x.ts', imports: [] },
  ];
  const v = violationsOf(broken);
  assert.equal(v.length, 5, v.join('\n'));
  assert.deepEqual(violationsOf([{ file: 'src/scan/engine.ts', imports: ['src/core/errors', 'src/products/sdk'] }]), []);
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
