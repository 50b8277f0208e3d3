/**
 * The self-contained bundle (what a CERT attaches to its warnings) run with plain node, and the
 * `tocsin forensics` command registered in the main CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  const [meta, ...recs] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { check: string; line: number | null; meta?: { exitCode: number } });
  assert.equal(meta!.meta?.exitCode, 1);
  assert.equal(recs.length, 33);
  assert.ok(recs.some((x) => x.check === 'proxynotshell-powershell'));
  assert.match(r.stderr, /INDICATORS FOUND/);
});

/** An IIS log with one request on every day from `from` to `to`, except the days in `skip`. */
function iisDays(from: string, to: string, skip: readonly string[] = []): string {
  let body = '#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time cs-method cs-uri-stem cs-uri-query c-ip sc-status\r\n';
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) {
    const d = new Date(t).toISOString().slice(0, 10);
    if (!skip.includes(d)) body += `${d} 08:00:00 GET /owa/auth/logon.aspx - 198.51.100.1 200\r\n`;
  }
  return body;
}

test('bundle: --output writes the CSV report; logs on every day of every window -> exit 0; one day missing -> exit 3', () => {
  const out = join(tmp, 'report.csv');
  assert.equal(run([TREE, '--format', 'csv', '--output', out]).status, 1);
  assert.match(readFileSync(out, 'utf8'), /^check,cve,severity,file,line,time,clientIp,evidence\r\n/);
  const clean = join(tmp, 'clean', 'W3SVC1');
  mkdirSync(clean, { recursive: true });
  writeFileSync(join(clean, 'u_ex21.log'), iisDays('2021-02-27', '2021-09-01'));
  writeFileSync(join(clean, 'u_ex22.log'), iisDays('2022-09-28', '2023-01-01'));
  const r = run([join(tmp, 'clean')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /NONE FOUND/);
  assert.match(r.stdout, /ProxyLogon +2021-02-28\.\.2021-03-31 +covered/);
  // A gap of one day in March 2021: nothing found, but no verdict either.
  writeFileSync(join(clean, 'u_ex21.log'), iisDays('2021-02-27', '2021-09-01', ['2021-03-09']));
  const gap = run([join(tmp, 'clean')]);
  assert.equal(gap.status, 3, gap.stdout + gap.stderr);
  assert.match(gap.stdout, /INSUFFICIENT LOGS/);
  assert.match(gap.stdout, /ProxyLogon +2021-02-28\.\.2021-03-31 +insufficient request logs lack 1 of 32 day\(s\) of the window: 2021-03-09/);
  assert.match(gap.stdout, /gaps: 2021-03-09/);
});

test('bundle: one 2020 line and one 2023 file do not cover the campaigns: exit 3, not 0 (issue 6, finding 7)', () => {
  const dir = join(tmp, 'sparse', 'W3SVC1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'u_ex201201.log'), iisDays('2020-12-01', '2020-12-01'));
  writeFileSync(join(dir, 'u_ex230101.log'), iisDays('2023-01-01', '2023-01-01'));
  const r = run([join(tmp, 'sparse')]);
  assert.equal(r.status, 3, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, / covered {3,}/, 'no campaign is listed as covered');
  for (const c of ['ProxyLogon', 'ProxyShell', 'ProxyNotShell']) assert.match(r.stdout, new RegExp(`${c} .* insufficient no request-log record on any`));
  assert.match(r.stdout, /gaps: 2020-12-02\.\.2022-12-31/);
});

test('bundle: an empty folder, a binary file, an executable: exit 2 "no Exchange or IIS log found" (issue 6, finding 7)', () => {
  const empty = join(tmp, 'empty');
  mkdirSync(empty, { recursive: true });
  const bin = join(tmp, 'E00.log');
  writeFileSync(bin, Buffer.alloc(4096, 0));
  for (const p of [empty, bin, process.execPath]) {
    const r = run([p, '--format', 'jsonl']);
    assert.equal(r.status, 2, `${p}: ${r.stderr}`);
    assert.match(r.stderr, /NO LOGS: no Exchange or IIS log found/);
    assert.match(r.stderr, /exit code 2/);
  }
});

test('bundle: --version and the summary name the kit version and rules revision', () => {
  const v = run(['--version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^tocsin-forensics \d+\.\d+\.\d+, rules [0-9a-f]{12}\n$/);
  assert.ok(run([TREE, '--no-progress']).stdout.includes(v.stdout.trim()));
});

test('bundle: errors exit 2 (missing path, unknown option, bad format)', () => {
  assert.equal(run([join(tmp, 'nope')]).status, 2);
  assert.equal(run([TREE, '--bogus']).status, 2);
  const r = run([TREE, '--format', 'xml']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /TOCSIN_FORENSICS_INPUT/);
  const help = run(['--help']).stdout;
  assert.match(help, /Exit code: 0 nothing found and the logs cover every campaign window, 1 indicators found, 2 error/);
  assert.match(help, /3 nothing found but the logs are insufficient/);
});

test('main CLI: `forensics` is registered and sets the exit code', async () => {
  assert.ok((await Promise.all(COMMANDS.map((c) => c.load()))).some((m) => m.register === register));
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
  assert.equal(out.trim().split('\n').length, 34, 'the meta line and 33 records');
  const p2 = new Command('tocsin').exitOverride();
  register(p2, ctx);
  await assert.rejects(p2.parseAsync(['forensics', TREE, '--bogus'], { from: 'user' }), (e: unknown) => (e as { exitCode?: number }).exitCode === 2);
});

test('bundle: a reader that goes away (| head -1) ends the run quietly with its exit code, no stack trace', async () => {
  // Enough records that the output outgrows the pipe buffer: the kit is still writing when the reader closes.
  const fixture = readFileSync(join(TREE, 'inetpub/logs/LogFiles/W3SVC1/u_ex210303.log'), 'utf8').split('\n');
  const data = fixture.slice(4, 13).join('\n') + '\n';
  const dir = join(tmp, 'epipe/W3SVC1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'u_ex210303.log'), fixture.slice(0, 4).join('\n') + '\n' + data.repeat(3000));
  const child = spawn(process.execPath, [bundle, join(tmp, 'epipe'), '--format', 'jsonl', '--no-progress'], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let first = '';
  child.stdout.setEncoding('utf8');
  child.stdout.once('data', (d: string) => {
    first = d;
    child.stdout.destroy();
  });
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  assert.match(first, /^\{"meta":/);
  assert.doesNotMatch(stderr, /Unhandled|EPIPE|\n\s+at /, stderr);
  assert.match(stderr, /INDICATORS FOUND/);
  assert.equal(status, 1, stderr);
});

test('--output x.csv without --format writes CSV, .jsonl JSONL; a contradicting --format is refused (exit 2)', () => {
  const out = mkdtempSync(join(tmpdir(), 'tocsin-forensics-out-'));
  try {
    const csv = join(out, 'findings.csv');
    const r = run([TREE, '--no-progress', '--output', csv]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(readFileSync(csv, 'utf8').split(/\r?\n/)[0] ?? '', /^check,/, 'a CSV header, not the text report');
    const jsonl = join(out, 'findings.jsonl');
    assert.equal(run([TREE, '--no-progress', '--output', jsonl]).status, 1);
    assert.match(readFileSync(jsonl, 'utf8'), /^\{"meta":/);
    const bad = join(out, 'other.csv');
    const b = run([TREE, '--no-progress', '--format', 'text', '--output', bad]);
    assert.equal(b.status, 2, b.stderr);
    assert.match(b.stderr, /TOCSIN_FORENSICS_INPUT: --format "text" contradicts --output/);
    assert.equal(existsSync(bad), false, 'nothing written');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
