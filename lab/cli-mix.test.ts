/**
 * `tocsin lab --mix`: the named estates from the command line (loopback only: 127.98.250.0/29).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../src/platform/paths.js';

const cli = join(packageRoot(), 'src', 'bin', 'tocsin.ts');

function run(args: readonly string[], untilListening: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (untilListening && stdout.includes('"event":"listening"')) c.kill('SIGTERM');
    });
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

test('tocsin lab --mix all-exchange serves only Exchange servers; an unknown mix is a clean usage error', async () => {
  const ok = await run(['lab', '--hosts', '8', '--base', '127.98.250.0', '--https-port', '0', '--http-port', '0', '--mix', 'all-exchange'], true);
  assert.match(ok.stdout, /"event":"listening"/);
  assert.match(ok.stderr, /kinds: exchange 8\n/);
  const bad = await run(['lab', '--hosts', '8', '--base', '127.98.250.0', '--https-port', '0', '--http-port', '0', '--mix', 'nope'], false);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /TOCSIN_ARG_INVALID/);
  assert.match(bad.stderr, /--mix must be one of default, all-exchange/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /); // no stack trace
});
