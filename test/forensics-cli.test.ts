/**
 * The self-contained bundle (what a CERT attaches to its warnings) run with plain node, and the
 * `tocsin forensics` command registered in the main CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { register } from '../src/cli/forensics.js';
import { COMMANDS } from '../src/cli/commands.js';
import type { CliContext } from '../src/cli/context.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TREE = join(ROOT, 'test/fixtures/forensics/server1');
let tmp = '';
let bundle = '';

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tocsin-forensics-cli-'));
  bundle = join(tmp, 'tocsin-forensics.cjs');
  const b = spawnSync(process.execPath, [join(ROOT, 'scripts/build-forensics-bundle.mjs'), bundle], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8', cwd: tmp });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the bundle is one self-contained file: no require of anything but node built-ins', () => {
  const src = readFileSync(bundle, 'utf8');
  const reqs = [...src.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
  assert.ok(reqs.length > 0);
  for (const r of reqs) assert.match(r, /^node:|^(fs|path|zlib|crypto|util|net|os|url|stream|events)$/, r);
  assert.ok(statSync(bundle).size < 1_000_000);
});

test('bundle: indicators found -> exit 1, JSONL records on stdout, summary on stderr', () => {
  const r = run([TREE, '--format', 'jsonl', '--no-progress']);
  assert.equal(r.status, 1, r.stderr);
  const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { check: string; line: number | null });
  assert.equal(recs.length, 33);
  assert.ok(recs.some((x) => x.check === 'proxynotshell-powershell'));
  assert.match(r.stderr, /INDICATORS FOUND/);
});

test('bundle: --output writes the CSV report; a clean, well-covered log set -> exit 0', () => {
  const out = join(tmp, 'report.csv');
  assert.equal(run([TREE, '--format', 'csv', '--output', out]).status, 1);
  assert.match(readFileSync(out, 'utf8'), /^check,cve,severity,file,line,time,clientIp,evidence\r\n/);
  const clean = join(tmp, 'clean', 'W3SVC1');
  mkdirSync(clean, { recursive: true });
  writeFileSync(
    join(clean, 'u_ex1.log'),
    '#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time cs-method cs-uri-stem cs-uri-query c-ip sc-status\r\n' +
      '2020-12-01 00:00:00 GET /owa/auth/logon.aspx - 198.51.100.1 200\r\n2023-01-01 00:00:00 GET /owa/ - 198.51.100.1 302\r\n',
  );
  const r = run([join(tmp, 'clean')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /NONE FOUND/);
});

test('bundle: errors exit 2 (missing path, unknown option, bad format)', () => {
  assert.equal(run([join(tmp, 'nope')]).status, 2);
  assert.equal(run([TREE, '--bogus']).status, 2);
  const r = run([TREE, '--format', 'xml']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /TOCSIN_FORENSICS_INPUT/);
  assert.match(run(['--help']).stdout, /Exit code: 0 nothing found, 1 indicators found, 2 error/);
});

test('main CLI: `forensics` is registered and sets the exit code', async () => {
  assert.ok(COMMANDS.some((c) => c.register === register));
  let out = '';
  const ctx = {
    config: () => {
      throw new Error('forensics must not need configuration');
    },
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: () => true, isTTY: false },
  } as unknown as CliContext;
  const program = new Command('tocsin').exitOverride();
  register(program, ctx);
  const saved = process.exitCode;
  try {
    await program.parseAsync(['forensics', TREE, '--format', 'jsonl', '--no-progress'], { from: 'user' });
    assert.equal(process.exitCode, 1);
  } finally {
    process.exitCode = saved;
  }
  assert.equal(out.trim().split('\n').length, 33);
  const p2 = new Command('tocsin').exitOverride();
  register(p2, ctx);
  await assert.rejects(p2.parseAsync(['forensics', TREE, '--bogus'], { from: 'user' }), (e: unknown) => (e as { exitCode?: number }).exitCode === 2);
});
