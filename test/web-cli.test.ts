/**
 * `tocsin user add|list|disable` and `tocsin token create|list|revoke` through the real CLI (a child process) on
 * both backends: the generated password is printed once on stdout and logs in over HTTP; the token printed once
 * authenticates as a bearer token until revoked; errors carry our codes (a missing --org, a duplicate account).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/web/app.js';
import { testEachBackend } from './helpers/db.js';
import { spawn } from 'node:child_process';
import { ROOT, cliEntry, runCli } from './helpers/independent-estate/cli.js';

testEachBackend('web CLI: user add prints a password once, token create prints a working token, revoke and disable', async ({ database, url }) => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-web-cli-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  const app = await buildApp({ db: database.db });
  try {
    const add = await runCli(['user', 'add', 'Boss@Example.org', '--role', 'admin'], env, 120_000);
    assert.equal(add.code, 0, add.stderr.toString());
    const password = add.stdout.toString().trim();
    assert.match(password, /^[A-Za-z0-9_-]{20,}$/);
    assert.doesNotMatch(add.stderr.toString(), new RegExp(password), 'the password is on stdout only');

    const dup = await runCli(['user', 'add', 'boss@example.org', '--role', 'analyst'], env, 120_000);
    assert.equal(dup.code, 65);
    assert.match(dup.stderr.toString(), /TOCSIN_USER_EXISTS/);
    const noOrg = await runCli(['user', 'add', 'org@example.org', '--role', 'org'], env, 120_000);
    assert.equal(noOrg.code, 64);
    assert.match(noOrg.stderr.toString(), /TOCSIN_ARG_INVALID/);

    const list = await runCli(['user', 'list'], env, 120_000);
    assert.match(list.stdout.toString(), /^boss@example\.org\tadmin\t-\tenabled\t/m);

    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const login = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'boss@example.org', password }) });
    assert.equal(login.status, 200);

    const made = await runCli(['token', 'create', 'boss@example.org', '--name', 'nightly', '--expires', '7d'], env, 120_000);
    assert.equal(made.code, 0, made.stderr.toString());
    const token = made.stdout.toString().trim();
    assert.match(token, /^tocsin_[A-Za-z0-9_-]{40,}$/);
    const me = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
    const tokens = await runCli(['token', 'list'], env, 120_000);
    assert.match(tokens.stdout.toString(), /^1\tboss@example\.org\tnightly\tlive\t/m);
    assert.doesNotMatch(tokens.stdout.toString(), new RegExp(token));

    assert.equal((await runCli(['token', 'revoke', '1'], env, 120_000)).code, 0);
    assert.equal((await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status, 401);

    assert.equal((await runCli(['user', 'disable', 'BOSS@example.org'], env, 120_000)).code, 0);
    const again = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'boss@example.org', password }) });
    assert.equal(again.status, 401);
    const missing = await runCli(['user', 'disable', 'nobody@example.org'], env, 120_000);
    assert.match(missing.stderr.toString(), /TOCSIN_USER_NOT_FOUND/);
  } finally {
    await app.close();
    rmSync(home, { recursive: true, force: true });
  }
});

testEachBackend('web CLI: serve on an empty database creates one administrator and prints its password once; user passwd replaces it', async ({ url }) => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-web-first-'));
  const env = { ...process.env, TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  const child = spawn(process.execPath, [...cliEntry().nodeArgs, 'serve', '--port', '0'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  try {
    const base = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
        const m = /"url":"([^"]+)"/.exec(stdout);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${String(code)}: ${stderr}`)));
    });
    const m = /e-mail: +(\S+)\n +password: +(\S+)/.exec(stderr);
    assert.ok(m !== null, stderr);
    const [, email, password] = m;
    assert.equal(email, 'admin@localhost');
    const login = (pw: string): Promise<Response> => fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: pw }) });
    assert.equal((await login(password ?? '')).status, 200);

    const changed = await runCli(['user', 'passwd', 'admin@localhost'], { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url }, 120_000);
    assert.equal(changed.code, 0, changed.stderr.toString());
    const fresh = changed.stdout.toString().trim();
    assert.notEqual(fresh, password);
    assert.equal((await login(password ?? '')).status, 401, 'the old password no longer works');
    assert.equal((await login(fresh)).status, 200);
    const missing = await runCli(['user', 'passwd', 'nobody@example.org'], { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url }, 120_000);
    assert.match(missing.stderr.toString(), /TOCSIN_USER_NOT_FOUND/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    rmSync(home, { recursive: true, force: true });
  }
  // A second start finds the account and prints no password.
  const again = spawn(process.execPath, [...cliEntry().nodeArgs, 'serve', '--port', '0'], { cwd: ROOT, env: { ...process.env, TOCSIN_DATABASE_URL: url, TOCSIN_HOME: mkdtempSync(join(tmpdir(), 'tocsin-web-first-')) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err2 = '';
  again.stderr.on('data', (b: Buffer) => { err2 += b.toString(); });
  await new Promise<void>((resolve) => again.stdout.on('data', () => resolve()));
  again.kill('SIGTERM');
  await new Promise((r) => again.once('close', r));
  assert.doesNotMatch(err2, /password:/);
});
