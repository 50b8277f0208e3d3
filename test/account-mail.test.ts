/**
 * Invitation and password reset by e-mail (issue 10 §2), over real HTTP and real SMTP (the demo's local sink at the
 * network edge, reached through the real SMTP adapter), on both database backends:
 * an invited account has no usable password until its link is used; the link works once; an expired link is
 * refused; a reset for an unknown address answers exactly like one for a known address and sends nothing; after a
 * reset the new password works, the old one does not and every session of the account has ended; reset mails are
 * capped per account and requests throttled per address; hostile text (the CERT's name, an organisation name
 * starting with '=') cannot add a header or a recipient; the no-login pages escape the token.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { simpleParser, type ParsedMail } from 'mailparser';
import { startLocalSink, createSmtpSender, type LocalSink } from '../src/platform/mail/index.js';
import { addUser, createToken } from '../src/services/accounts.js';
import { completeToken, requestPasswordReset, RESET_PER_HOUR } from '../src/services/account-mail.js';
import { buildApp } from '../src/web/app.js';
import { RESET_ANSWER } from '../src/web/routes/account-mail.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate } from './helpers/exposures-estate.js';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';

function tocsin(args: readonly string[], env: Readonly<Record<string, string>>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [...cliEntry().nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  return new Promise((resolve) => child.on('close', (c) => resolve({ code: c, stderr: err })));
}

const ADMIN_PASSWORD = 'correct horse battery staple';
const HOSTILE_CERT = 'CERT\r\nBcc: evil@attacker.example\r\nX-Evil: 1';
const WEB = 'https://tocsin.test/base/';

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: Record<string, unknown>;
}

type Call = (method: string, path: string, o?: { body?: unknown; bearer?: string; cookie?: string; csrf?: string }) => Promise<Answer>;

async function caller(base: string): Promise<Call> {
  return async (method, path, o = {}) => {
    const headers: Record<string, string> = {};
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.bearer !== undefined) headers['authorization'] = `Bearer ${o.bearer}`;
    if (o.cookie !== undefined) headers['cookie'] = o.cookie;
    if (o.csrf !== undefined) headers['x-csrf-token'] = o.csrf;
    const res = await fetch(`${base}${path}`, { method, headers, ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
    const text = await res.text();
    const json = (res.headers.get('content-type') ?? '').startsWith('application/json') ? (JSON.parse(text) as Record<string, unknown>) : {};
    return { status: res.status, headers: res.headers, text, json };
  };
}

function codeOf(a: Answer): unknown {
  return (a.json['error'] as { code?: string } | undefined)?.code;
}

/** Waits (bounded) until the sink holds `n` messages: the reset mail is sent after the answer. */
async function mails(sink: LocalSink, n: number): Promise<ParsedMail[]> {
  for (let i = 0; i < 200 && sink.saved.length < n; i++) await sleep(50);
  assert.equal(sink.saved.length, n, `expected ${n} message(s) in the sink`);
  return Promise.all(sink.saved.map((s) => simpleParser(readFileSync(s.path))));
}

function tokenIn(m: ParsedMail): string {
  const match = /https:\/\/tocsin\.test\/base\/reset\/complete\?token=([A-Za-z0-9_-]+)/.exec(m.text ?? '');
  assert.ok(match?.[1] !== undefined, `a link in: ${m.text ?? ''}`);
  return match[1];
}

function rawHead(path: string): string {
  const raw = readFileSync(path, 'latin1');
  return raw.slice(0, raw.indexOf('\r\n\r\n'));
}

testEachBackend('account mail: invitation, reset, single use, expiry, same answer, sessions end, throttles, hostile headers', async ({ database, url }) => {
  const db = database.db;
  await buildEstate(database);
  const home = mkdtempSync(join(tmpdir(), 'tocsin-account-mail-'));
  const sink = await startLocalSink({ home });
  const saved = { ...process.env };
  Object.assign(process.env, { TOCSIN_SMTP_URL: sink.url, TOCSIN_MAIL_FROM: 'CERT <cert@cert.test>', TOCSIN_WEB_URL: WEB, TOCSIN_CERT_NAME: HOSTILE_CERT });
  const app = await buildApp({ db });
  try {
    const call = await caller(await app.listen({ host: '127.0.0.1', port: 0 }));
    await addUser(db, { email: 'admin@cert.test', role: 'admin', password: ADMIN_PASSWORD });
    await addUser(db, { email: 'analyst@cert.test', role: 'analyst', password: ADMIN_PASSWORD });
    const admin = (await createToken(db, 'admin@cert.test')).token;
    const analyst = (await createToken(db, 'analyst@cert.test')).token;

    // Only an administrator invites.
    const body = { email: 'New.User@Customer.example', role: 'org', org: '=Evil Org' };
    assert.equal((await call('POST', '/api/users/invite', { bearer: analyst, body })).status, 403);
    assert.equal((await call('POST', '/api/users/invite', { body })).status, 401);
    const invited = await call('POST', '/api/users/invite', { bearer: admin, body });
    assert.equal(invited.status, 200, invited.text);
    assert.equal(invited.json['mail'], 'accepted');
    assert.equal(invited.json['email'], 'new.user@customer.example');
    assert.equal(invited.json['org'], '=Evil Org');
    assert.equal((await call('POST', '/api/users/invite', { bearer: admin, body })).status, 409, 'the account exists now');

    const [invite] = await mails(sink, 1);
    assert.ok(invite !== undefined);
    assert.deepEqual(sink.saved[0]?.recipients, ['new.user@customer.example'], 'the envelope has the invitee only');
    assert.equal(invite.subject, 'Your CERT Bcc: evil@attacker.example X-Evil: 1 account for =Evil Org', 'hostile text folded into the subject');
    assert.equal(invite.headers.get('bcc'), undefined);
    assert.equal(invite.headers.get('x-evil'), undefined);
    const head = rawHead(sink.saved[0]?.path ?? '');
    assert.doesNotMatch(head, /^(Bcc|X-Evil):/im, 'no injected header line');
    const inviteToken = tokenIn(invite);

    // No usable password before the link is used.
    assert.equal((await call('POST', '/api/session', { body: { email: 'new.user@customer.example', password: ADMIN_PASSWORD } })).status, 401);

    // The completion page carries the token, escaped; a crafted one is text, never markup.
    const page = await call('GET', `/reset/complete?token=${inviteToken}`);
    assert.equal(page.status, 200);
    assert.ok(page.text.includes(`name="token" value="${inviteToken}"`));
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const crafted = await call('GET', `/reset/complete?token=${encodeURIComponent('"><script>alert(1)</script>')}`);
    assert.ok(!crafted.text.includes('<script>alert(1)'), 'a crafted token is never markup');
    assert.equal((await call('GET', '/reset')).status, 200);

    // The link works once; a short password is refused first without spending it.
    const short = await call('POST', '/api/password-reset/complete', { body: { token: inviteToken, password: 'short' } });
    assert.equal(short.status, 400);
    assert.equal(codeOf(short), 'TOCSIN_ARG_INVALID');
    const FIRST = 'first password of the new user';
    const done = await call('POST', '/api/password-reset/complete', { body: { token: inviteToken, password: FIRST } });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json['email'], 'new.user@customer.example');
    const again = await call('POST', '/api/password-reset/complete', { body: { token: inviteToken, password: 'another password entirely' } });
    assert.equal(again.status, 400);
    assert.equal(codeOf(again), 'TOCSIN_ACCOUNT_TOKEN_INVALID');
    const login = await call('POST', '/api/session', { body: { email: 'new.user@customer.example', password: FIRST } });
    assert.equal(login.status, 200, 'the chosen password works (the second use changed nothing)');
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    assert.equal((await call('GET', '/api/me', { cookie })).status, 200);

    // A reset: an unknown address gets the same answer and nothing is sent; the known one gets a link.
    const unknown = await call('POST', '/api/password-reset', { body: { email: 'nobody@nowhere.example' } });
    const known = await call('POST', '/api/password-reset', { body: { email: 'NEW.USER@customer.example' } });
    assert.equal(unknown.status, 200);
    assert.deepEqual([known.status, known.text], [unknown.status, unknown.text], 'the same answer either way');
    assert.equal(known.json['message'], RESET_ANSWER);
    const [, reset] = await mails(sink, 2);
    assert.ok(reset !== undefined);
    assert.deepEqual(sink.saved[1]?.recipients, ['new.user@customer.example']);
    assert.equal(reset.subject, 'Reset your CERT Bcc: evil@attacker.example X-Evil: 1 password');
    const resetToken = tokenIn(reset);
    assert.notEqual(resetToken, inviteToken);

    // After the reset: the new password works, the old one does not, and the open session has ended.
    const SECOND = 'second password after the reset';
    assert.equal((await call('POST', '/api/password-reset/complete', { body: { token: resetToken, password: SECOND } })).status, 200);
    assert.equal((await call('GET', '/api/me', { cookie })).status, 401, 'the session made with the old password ended');
    assert.equal((await call('POST', '/api/session', { body: { email: 'new.user@customer.example', password: FIRST } })).status, 401);
    assert.equal((await call('POST', '/api/session', { body: { email: 'new.user@customer.example', password: SECOND } })).status, 200);
    assert.equal(codeOf(await call('POST', '/api/password-reset/complete', { body: { token: resetToken, password: 'yet another password' } })), 'TOCSIN_ACCOUNT_TOKEN_INVALID');

    // An expired link is refused (made two hours ago, valid one hour).
    const sender = createSmtpSender({ url: sink.url, from: 'cert@cert.test' });
    try {
      const past = new Date(Date.now() - 2 * 3600_000);
      await (await requestPasswordReset(db, sender, 'new.user@customer.example', WEB, { now: past })).delivery;
      const [, , expiredMail] = await mails(sink, 3);
      assert.ok(expiredMail !== undefined);
      await assert.rejects(completeToken(db, tokenIn(expiredMail), 'a password for an expired link'), /TOCSIN_ACCOUNT_TOKEN_INVALID|expired/);
      assert.equal((await call('POST', '/api/session', { body: { email: 'new.user@customer.example', password: SECOND } })).status, 200, 'unchanged');

      // At most RESET_PER_HOUR reset mails per account and hour, whatever is asked (the answer stays the same).
      for (let i = 0; i < RESET_PER_HOUR + 2; i++) await (await requestPasswordReset(db, sender, 'new.user@customer.example', WEB)).delivery;
      await sleep(100);
      const resets = sink.saved.slice(1).length;
      assert.equal(resets, RESET_PER_HOUR, `reset mails in the hour: ${resets}`);
    } finally {
      await sender.close();
    }

    // `tocsin user invite` sends the same invitation through the configured relay.
    const cli = await tocsin(['user', 'invite', 'Second@Customer.example', '--role', 'analyst'], { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stderr, /added second@customer\.example \(analyst\); invitation sent/);
    const n = sink.saved.length;
    const cliMail = (await mails(sink, n))[n - 1];
    assert.deepEqual(sink.saved[n - 1]?.recipients, ['second@customer.example']);
    assert.ok(cliMail !== undefined);
    tokenIn(cliMail);

    // Requests per address are throttled in the web layer (5 in 15 minutes), for known and unknown addresses alike.
    let last: Answer | null = null;
    for (let i = 0; i < 6; i++) last = await call('POST', '/api/password-reset', { body: { email: 'someone@nowhere.example' } });
    assert.equal(last?.status, 429);
    assert.equal(codeOf(last as Answer), 'TOCSIN_AUTH_THROTTLED');
  } finally {
    await app.close();
    await sink.close();
    for (const k of ['TOCSIN_SMTP_URL', 'TOCSIN_MAIL_FROM', 'TOCSIN_WEB_URL', 'TOCSIN_CERT_NAME']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    rmSync(home, { recursive: true, force: true });
  }
});

testEachBackend('account mail: a reset on a server without mail settings is a clean 503 naming what is missing', async ({ database }) => {
  const saved = { ...process.env };
  for (const k of ['TOCSIN_SMTP_URL', 'TOCSIN_MAIL_FROM', 'TOCSIN_WEB_URL']) delete process.env[k];
  const app = await buildApp({ db: database.db });
  try {
    const call = await caller(await app.listen({ host: '127.0.0.1', port: 0 }));
    const r = await call('POST', '/api/password-reset', { body: { email: 'someone@cert.test' } });
    assert.equal(r.status, 503, r.text);
    assert.equal(codeOf(r), 'TOCSIN_MAIL_UNCONFIGURED');
    assert.match(r.text, /TOCSIN_SMTP_URL, TOCSIN_MAIL_FROM, TOCSIN_WEB_URL not set/);
  } finally {
    await app.close();
    for (const k of ['TOCSIN_SMTP_URL', 'TOCSIN_MAIL_FROM', 'TOCSIN_WEB_URL']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
});
