/**
 * TLS and authentication as TOCSIN_SMTP_URL spells them: smtps:// (TLS from the first byte), STARTTLS required or
 * opportunistic, certificates verified against a given CA, user:pass in the URL. Peers on 127.0.0.1 with a
 * certificate made for the test (lab/cert-gen.ts).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { certificateDer, certificatePem, generateKeys, privateKeyPem } from '../lab/cert-gen.js';
import { createSmtpSender, type SendOutcome } from '../src/platform/mail/smtp-sender.js';
import { startFaultPeer } from './helpers/smtp-fault-peer.js';

let key = '';
let cert = '';
let dir = '';
let caFile = '';

before(async () => {
  const keys = await generateKeys('ec');
  const now = Date.now();
  cert = certificatePem(certificateDer({ subject: { cn: 'tocsin-fault-peer' }, sans: ['127.0.0.1'], notBefore: new Date(now - 3600_000), notAfter: new Date(now + 86400_000) }, keys));
  key = privateKeyPem(keys.privateKey);
  dir = mkdtempSync(join(tmpdir(), 'tocsin-mail-tls-'));
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert);
});
after(() => { if (dir !== '') rmSync(dir, { recursive: true, force: true }); });

const msg = (n: number): Parameters<ReturnType<typeof createSmtpSender>['send']>[0] => ({
  to: [{ address: 'security@org.test' }], subject: `tls ${n}`, text: 'body\n', messageId: `<tls-${n}-${Date.now()}@tocsin.test>`,
});

async function sendVia(url: string, n: number): Promise<SendOutcome> {
  const sender = createSmtpSender({ url, from: 'cert@tocsin.test', greetingTimeoutMs: 2000, socketTimeoutMs: 2000 });
  try {
    return await sender.send(msg(n));
  } finally {
    await sender.close();
  }
}

test('smtps:// with the CA from tlsCa: accepted over TLS from the first byte', async () => {
  const peer = await startFaultPeer('accept', { tls: { key, cert, implicit: true } });
  try {
    const out = await sendVia(`${peer.url}?tlsCa=${encodeURIComponent(caFile)}`, 1);
    assert.equal(out.kind, 'accepted', JSON.stringify(out));
    assert.equal(peer.accepted.length, 1);
  } finally {
    await peer.close();
  }
});

test('smtps:// without trusting the certificate: transient at connect, nothing sent', async () => {
  const peer = await startFaultPeer('accept', { tls: { key, cert, implicit: true } });
  try {
    const out = await sendVia(peer.url, 2);
    assert.ok(out.kind === 'transient' && out.stage === 'connect', JSON.stringify(out));
    assert.equal(peer.accepted.length, 0);
  } finally {
    await peer.close();
  }
});

test('starttls=required against a relay that offers no STARTTLS: transient at connect, nothing sent', async () => {
  const peer = await startFaultPeer('accept');
  try {
    const out = await sendVia(peer.url.replace('starttls=never', 'starttls=required'), 3);
    assert.ok(out.kind === 'transient' && out.stage === 'connect', JSON.stringify(out));
    assert.equal(peer.accepted.length, 0);
  } finally {
    await peer.close();
  }
});

test('STARTTLS required and offered, CA given: accepted', async () => {
  const peer = await startFaultPeer('accept', { tls: { key, cert, implicit: false } });
  try {
    const out = await sendVia(`${peer.url}?starttls=required&tlsCa=${encodeURIComponent(caFile)}`, 4);
    assert.equal(out.kind, 'accepted', JSON.stringify(out));
  } finally {
    await peer.close();
  }
});

test('user:pass from the URL: accepted with the right password; 535 with a wrong one is transient at auth', async () => {
  const peer = await startFaultPeer('accept', { auth: { user: 'cert@tocsin.test', pass: 'p@ss/word' } });
  try {
    const base = peer.url.replace('smtp://', '');
    const good = await sendVia(`smtp://${encodeURIComponent('cert@tocsin.test')}:${encodeURIComponent('p@ss/word')}@${base}`, 5);
    assert.equal(good.kind, 'accepted', JSON.stringify(good));
    const bad = await sendVia(`smtp://${encodeURIComponent('cert@tocsin.test')}:wrong@${base}`, 6);
    assert.ok(bad.kind === 'transient' && bad.stage === 'auth' && bad.code === 535, JSON.stringify(bad));
    const none = await sendVia(peer.url, 7);
    // No credentials: the relay says 530 at MAIL FROM; that is our configuration, not this message's fault.
    assert.ok(none.kind === 'transient' && none.code === 530 && none.stage === 'auth', JSON.stringify(none));
    assert.equal(peer.accepted.length, 1);
  } finally {
    await peer.close();
  }
});
