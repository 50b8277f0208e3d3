/**
 * Delivery tracking end to end (issue 9 §2): a campaign sent through the real postfix (scripts/ci-postfix.sh), then
 * a Maildir / mbox of what came back (realistic DSNs as postfix and Exchange write them, a reply, an out-of-office,
 * hostile mail) ingested through the real services on both database backends: the bounced organisation's warning
 * moves to its next contact and arrives there; the reply is linked; ingesting again changes nothing; the
 * acknowledgement token marks the message acknowledged (and a tampered one is refused with its code).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMailbox } from '../src/platform/mail/mailbox-reader.js';
import { createSmtpSender } from '../src/platform/mail/index.js';
import { approveCampaign, campaignStatus, createCampaign, sendCampaign, type RenderContext, type StatusRecord } from '../src/services/campaigns.js';
import { foldFindings } from '../src/services/findings.js';
import { campaignInbound, ingestMailbox, type IngestItem } from '../src/services/mail-ingest.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate, mboxOf, writeMaildir } from './helpers/mail-estate.js';
import { mtaOrSkip, uniqueDomain, waitForMessages } from './helpers/mta.js';

const SECRET = Buffer.from('mail-ingest-test-secret-0123456789');
const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'tocsin.ts');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'mail');

function ctx(): RenderContext {
  return { fromAddress: 'cert@cert.test', contactUrl: 'https://cert.test/scanning', ackSecret: SECRET, ackUrlBase: 'https://cert.test/ack/' };
}

function fixture(name: string, v: { DOMAIN: string; RCPT: string; SUBJECT: string; MESSAGE_ID: string; TICKET: string }): string {
  return readFileSync(join(FIXTURES, name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: keyof typeof v) => v[k]);
}

function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('mailbox reader: mbox separators, >From quoting, size caps, broken MIME never stops the run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-mbox-'));
  try {
    const big = `Subject: big\n\n${'x'.repeat(300_000)}\n`;
    const quoted = 'Subject: quoted\n\nFrom here on\n>From there\nend\n';
    const broken = 'Content-Type: multipart/mixed; boundary="q"\nSubject: =?utf-8?B?!!!?=\n\n--q\nContent-Type: message/rfc822\n\n--q\n';
    writeFileSync(join(dir, 'box'), mboxOf(['Subject: one\n\nhello\n', quoted, big, broken]) + `From x\n${'y'.repeat(200_000)}`);
    const got = [];
    for await (const e of readMailbox(join(dir, 'box'), { maxBytes: 100_000 })) got.push(e);
    assert.equal(got.length, 5);
    assert.equal(got[0]!.raw.toString(), 'Subject: one\n\nhello\n');
    assert.equal(got[0]!.summary?.subject, 'one');
    assert.equal(got[1]!.raw.toString(), quoted);
    // one line of 300 kB: cut at the line cap (64 KiB), the entry says so
    assert.deepEqual([got[2]!.truncated, got[2]!.raw.length < 100_000, got[2]!.size > 300_000], [true, true, true]);
    const many = `Subject: many\n\n${'x'.repeat(1000)}\n`.repeat(1);
    writeFileSync(join(dir, 'box2'), mboxOf([`${many}${'z'.repeat(999)}\n`.repeat(200)]));
    const [capped] = await (async () => { const a = []; for await (const e of readMailbox(join(dir, 'box2'), { maxBytes: 100_000 })) a.push(e); return a; })();
    assert.deepEqual([capped!.truncated, capped!.raw.length], [true, 100_000]);
    assert.equal(got[3]!.location, `${join(dir, 'box')}#4`);
    assert.ok(got[4]!.raw.length <= 100_000);
    await assert.rejects(async () => {
      for await (const e of readMailbox(join(dir, 'nope'))) void e;
    }, (e: Error & { code?: string }) => e.code === 'TOCSIN_MAILBOX_UNREADABLE');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const mta = mtaOrSkip();
const NAME = 'mail ingest: a DSN moves the warning to the next contact (delivered there), replies linked, re-ingest changes nothing, ack by token';
if (mta.mta === null) test(NAME, { skip: mta.skip }, () => undefined);
else testEachBackend(NAME, async ({ database, url }) => {
  const m = mta.mta!;
  const db = database.db;
  const dom = uniqueDomain();
  const orgs = [
    { name: 'Alpha', network: '198.18.1.0/24', contact: `sec-alpha@${dom}`, abuse: `abuse-alpha@${dom}`, ips: ['198.18.1.10'] },
    { name: 'Beta', network: '198.18.2.0/24', contact: `sec-beta@${dom}`, ips: ['198.18.2.10'] },
    { name: 'Gamma', network: '198.18.3.0/24', contact: `sec-gamma@${dom}`, ips: ['198.18.3.10'] },
  ];
  await buildEstate(database, orgs);
  await foldFindings(db);
  const { id } = await createCampaign(db, { name: 'ingest', group: 'proxylogon', createdBy: 'tester', fromAddress: 'cert@cert.test' });
  await approveCampaign(db, id, 'lead');
  const sender = createSmtpSender({ url: m.url, from: 'CERT <cert@cert.test>' });
  const home = mkdtempSync(join(tmpdir(), 'tocsin-ingest-'));
  try {
    assert.equal((await sendCampaign(db, id, sender, ctx())).sent, 3);
    const st = async (): Promise<Map<string, StatusRecord>> => new Map((await campaignStatus(db, id)).records.map((r) => [r.org, r]));
    const s0 = await st();
    const first = new Map<string, { subject: string; text: string }>();
    for (const o of orgs) {
      const [d] = await waitForMessages(m, o.contact, 1);
      first.set(o.name, { subject: d!.parsed.subject ?? '', text: d!.parsed.text ?? '' });
    }
    const vals = (org: string, rcpt: string): { DOMAIN: string; RCPT: string; SUBJECT: string; MESSAGE_ID: string; TICKET: string } =>
      ({ DOMAIN: dom, RCPT: rcpt, SUBJECT: first.get(org)!.subject, MESSAGE_ID: s0.get(org)!.messageId, TICKET: s0.get(org)!.ticket });

    // What came back: Alpha's security mailbox does not exist (postfix DSN); Beta was delayed, then replied; Gamma
    // is out of office; a forged DSN for Beta names an address Beta's warning never went to; junk and spam.
    const mails = [
      fixture('postfix-bounce.eml', vals('Alpha', orgs[0]!.contact)),
      fixture('postfix-delayed.eml', vals('Beta', orgs[1]!.contact)),
      fixture('human-reply.eml', vals('Beta', orgs[1]!.contact)),
      fixture('exchange-oof.eml', vals('Gamma', orgs[2]!.contact)),
      fixture('exchange-ndr.eml', { ...vals('Beta', `attacker@${dom}`), DOMAIN: 'evil.test' }),
      // a report naming Gamma's real address and ticket, but not our Message-ID (tickets are guessable)
      fixture('postfix-bounce.eml', { ...vals('Gamma', orgs[2]!.contact), MESSAGE_ID: '<guessed@cert.test>', DOMAIN: 'mx-gamma.test' }),
      'From: spam@spam.test\nSubject: cheap watches\n\nbuy\n',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="z"\nSubject: \u0000\u0007<script>\n\n--z\nContent-Type: message/delivery-status\n\n\u0000\n--z\n', // (mbox can only hold mail ending in a newline)
    ];
    const maildir = join(home, 'Maildir');
    writeMaildir(maildir, mails);
    const items: IngestItem[] = [];
    const sum = await ingestMailbox(db, maildir, { onItem: (i) => items.push(i) });
    assert.equal(sum.read, mails.length);
    const byEffect = (e: string): IngestItem[] => items.filter((i) => i.effect === e);
    assert.deepEqual(byEffect('rerouted').map((i) => [i.org, i.ticket, i.kind]), [['Alpha', s0.get('Alpha')!.ticket, 'dsn']]);
    assert.deepEqual(byEffect('delayed').map((i) => i.org), ['Beta']);
    assert.deepEqual(byEffect('reply').map((i) => i.org), ['Beta']);
    assert.deepEqual(byEffect('auto-reply').map((i) => i.org), ['Gamma']);
    assert.deepEqual(byEffect('bounce-not-ours').map((i) => i.org), ['Beta']);
    assert.deepEqual(byEffect('bounce-ignored').map((i) => [i.org, /ticket only/.test(i.detail)]), [['Gamma', true]]);
    assert.equal(byEffect('unmatched').length, 2); // the spam, and the junk report that names nothing of ours
    assert.deepEqual(sum.campaignsToSend, [id]);

    let s1 = await st();
    assert.deepEqual([s1.get('Alpha')!.state, s1.get('Alpha')!.step], ['queued', 1]);
    assert.match(s1.get('Alpha')!.reason ?? '', /5\.1\.1.*next contact, abuse/);
    assert.deepEqual([s1.get('Beta')!.state, s1.get('Gamma')!.state], ['sent', 'sent']); // delayed, forged, replies: no state change

    // The next send takes Alpha's warning to its abuse contact, through the real MTA.
    const again = await sendCampaign(db, id, sender, ctx());
    assert.deepEqual([again.considered, again.sent], [1, 1]);
    const [atAbuse] = await waitForMessages(m, `abuse-alpha@${dom}`, 1);
    assert.equal(atAbuse!.parsed.messageId, s0.get('Alpha')!.messageId);
    s1 = await st();
    assert.deepEqual([s1.get('Alpha')!.state, s1.get('Alpha')!.recipients], ['sent', [`abuse-alpha@${dom}`]]);

    // Linked replies, stored with sender, subject, text; the auto-reply is not an acknowledgement.
    const inbound = await campaignInbound(db, id);
    const reply = inbound.find((r) => r.kind === 'reply')!;
    assert.deepEqual([reply.org, reply.from], ['Beta', `sec-beta@${dom}`]);
    assert.match(reply.excerpt ?? '', /we patched the server last night/);
    assert.match(reply.subject ?? '', new RegExp(`^Re: \\[${s0.get('Beta')!.ticket}\\]`));
    assert.equal(inbound.filter((r) => r.kind === 'auto-reply' && r.org === 'Gamma').length, 1);
    assert.equal(inbound.filter((r) => r.kind === 'bounce' && r.org === 'Alpha' && r.finalRecipient === orgs[0]!.contact && r.status === '5.1.1').length, 1);
    assert.equal(inbound.filter((r) => r.kind === 'delay' && r.org === 'Beta').length, 1);

    // Ingesting the same Maildir again, or the same mail as an mbox, changes nothing.
    const before = JSON.stringify([...(await st())]);
    const count = (await campaignInbound(db, id)).length;
    const second = await ingestMailbox(db, maildir);
    assert.deepEqual([second.read, second.duplicates], [mails.length, mails.length]);
    writeFileSync(join(home, 'box.mbox'), mboxOf(mails));
    const third = await ingestMailbox(db, join(home, 'box.mbox'));
    assert.deepEqual([third.read, third.duplicates], [mails.length, mails.length]);
    assert.equal(JSON.stringify([...(await st())]), before);
    assert.equal((await campaignInbound(db, id)).length, count);

    // Acknowledgement through the CLI: Beta's token; a tampered one is refused with TOCSIN_ACK_TOKEN_INVALID (65).
    const token = /https:\/\/cert\.test\/ack\/(\S+)/.exec(first.get('Beta')!.text)?.[1];
    assert.ok(token !== undefined);
    const env = { ...process.env, TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url, TOCSIN_ACK_SECRET: SECRET.toString() };
    const bad = await runCli(['ack', `${token.slice(0, -3)}${token.endsWith('AAA') ? 'BBB' : 'AAA'}`], env);
    assert.equal(bad.code, 65, bad.stderr);
    assert.match(bad.stderr, /TOCSIN_ACK_TOKEN_INVALID/);
    const replies = await runCli(['mail', 'replies', String(id), '--format', 'jsonl'], env);
    assert.equal(replies.code, 0, replies.stderr);
    const rl = replies.stdout.trim().split('\n').map((l) => JSON.parse(l) as { org: string; kind: string; text: string | null });
    assert.ok(rl.some((r) => r.org === 'Beta' && r.kind === 'reply' && /we patched/.test(r.text ?? '')), replies.stdout);
    const ok = await runCli(['ack', `https://cert.test/ack/${token}`], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), s0.get('Beta')!.ticket);
    assert.equal((await st()).get('Beta')!.state, 'acknowledged');
    const acked = await db.selectFrom('finding_events').select((eb) => eb.fn.countAll<number>().as('n')).where('kind', '=', 'acknowledged').executeTakeFirstOrThrow();
    assert.equal(Number(acked.n), 4); // Beta's host, the four ProxyLogon CVEs
    assert.equal((await st()).get('Gamma')!.state, 'sent'); // the out-of-office did not acknowledge

    // The CLI prints jsonl with sanitised values; a second ingest through it reads everything as duplicate.
    const cli = await runCli(['mail', 'ingest', maildir, '--format', 'jsonl'], env);
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.trim().split('\n').map((l) => JSON.parse(l) as { effect: string });
    assert.deepEqual([lines.length, lines.every((l) => l.effect === 'duplicate')], [mails.length, true]);
  } finally {
    await sender.close();
    rmSync(home, { recursive: true, force: true });
  }
});
