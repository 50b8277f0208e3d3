/**
 * The SMTP adapter through a real MTA (Debian's postfix from scripts/ci-postfix.sh): messages are delivered to
 * Maildirs, read back and parsed (mailparser), so what we check is what a recipient's mailbox holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { csvDocument } from '../src/core/csv.js';
import { createSmtpSender } from '../src/platform/mail/smtp-sender.js';
import { toHeaderText, type OutgoingMessage } from '../src/platform/mail/message.js';
import { mtaOrSkip, uniqueDomain, waitForMessages } from './helpers/mta.js';

const { mta, skip } = mtaOrSkip();
const opts = { skip };

function messageId(domain: string): string {
  return `<${Date.now().toString(36)}.${randomBytes(6).toString('hex')}@${domain}>`;
}

test('two recipients through postfix: both mailboxes hold the message with its headers, parts and CSV', opts, async () => {
  assert.ok(mta);
  const domain = uniqueDomain();
  const hostileOrg = 'Evil Corp <script>alert(1)</script>\r\nBcc: victim@elsewhere.test\r\nX-Injected: yes';
  const csv = csvDocument(['ip', 'port', 'cve', 'note'], [['192.0.2.10', 443, 'CVE-2021-26855', '=HYPERLINK("http://x.test")']]);
  const m: OutgoingMessage = {
    to: [{ address: `security@${domain}`, name: toHeaderText(hostileOrg) }, { address: `abuse@${domain}` }],
    subject: toHeaderText(`[Tocsin #20260302-00000001] Exchange servers of ${hostileOrg} exposed`),
    text: `Dear ${hostileOrg}\nYour server 192.0.2.10 is exposed to CVE-2021-26855.\n`,
    html: '<p>Dear Evil Corp &lt;script&gt;alert(1)&lt;/script&gt;</p><p>Your server is exposed.</p>',
    attachments: [{ filename: 'exposures.csv', contentType: 'text/csv; charset=utf-8', content: csv }],
    messageId: messageId('tocsin.test'),
    headers: { 'List-Id': 'Tocsin ProxyLogon warnings <proxylogon.campaigns.tocsin.test>', 'X-Tocsin-Ticket': '20260302-00000001' },
  };
  const sender = createSmtpSender({ url: mta.url, from: 'CERT Test <cert@tocsin.test>' });
  try {
    const out = await sender.send(m);
    assert.equal(out.kind, 'accepted', JSON.stringify(out));
    assert.ok(out.kind === 'accepted' && /^250 /.test(out.response));
    assert.deepEqual(out.kind === 'accepted' ? [...out.accepted].sort() : [], [`abuse@${domain}`, `security@${domain}`]);
  } finally {
    await sender.close();
  }
  for (const rcpt of [`security@${domain}`, `abuse@${domain}`]) {
    const [got, ...more] = await waitForMessages(mta, rcpt, 1);
    assert.ok(got);
    assert.equal(more.length, 0, `${rcpt} got exactly one message`);
    const p = got.parsed;
    assert.equal(p.messageId, m.messageId);
    assert.match(String(got.raw), /^List-Id: Tocsin ProxyLogon warnings <proxylogon\.campaigns\.tocsin\.test>\r?$/im);
    assert.equal(p.headers.get('auto-submitted'), 'auto-generated');
    assert.equal(p.headers.get('x-tocsin-ticket'), '20260302-00000001');
    assert.equal(p.from?.value[0]?.address, 'cert@tocsin.test');
    // The hostile name is inert text in one header, never a header of its own.
    assert.equal(p.subject, `[Tocsin #20260302-00000001] Exchange servers of ${toHeaderText(hostileOrg)} exposed`);
    assert.match(p.subject ?? '', /<script>alert\(1\)<\/script> Bcc: victim@elsewhere\.test X-Injected: yes/);
    assert.equal(p.headers.get('bcc'), undefined);
    assert.equal(p.headers.get('x-injected'), undefined);
    const head = got.raw.subarray(0, got.raw.indexOf('\n\n') >= 0 ? got.raw.indexOf('\n\n') : got.raw.length).toString('latin1');
    assert.doesNotMatch(head, /^(Bcc|X-Injected):/im);
    const to = Array.isArray(p.to) ? p.to : p.to ? [p.to] : [];
    assert.equal(to[0]?.value[0]?.name, toHeaderText(hostileOrg));
    assert.equal(p.text?.trim(), m.text.replace(/\r\n/g, '\n').trim(), 'the text part (line ends normalised); its "Bcc:" line is body text');
    assert.match(String(p.html), /Evil Corp &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.equal(p.attachments.length, 1);
    assert.equal(p.attachments[0]?.filename, 'exposures.csv');
    assert.equal(p.attachments[0]?.contentType, 'text/csv');
    assert.equal(p.attachments[0]?.content.toString('utf8'), csv);
    assert.match(p.attachments[0]?.content.toString('utf8') ?? '', /'=HYPERLINK/, 'the CSV cell is formula-safe');
    // Sent over STARTTLS, verified against the test MTA's certificate (the URL carries tlsCa).
    assert.match(String(p.headers.get('received')), /with ESMTPS /, 'postfix says ESMTPS for a TLS session');
  }
});

test('a recipient outside the test domains: postfix refuses to relay, permanent 550 at rcpt', opts, async () => {
  assert.ok(mta);
  const sender = createSmtpSender({ url: mta.url, from: 'cert@tocsin.test' });
  try {
    const out = await sender.send({ to: [{ address: 'someone@example.com' }], subject: 's', text: 't', messageId: messageId('tocsin.test') });
    assert.ok(out.kind === 'permanent' && out.code === 550 && out.stage === 'rcpt', JSON.stringify(out));
  } finally {
    await sender.close();
  }
});

test('STARTTLS required with a certificate we do not trust: transient at connect, nothing sent', opts, async () => {
  assert.ok(mta);
  const url = new URL(mta.url);
  url.searchParams.delete('tlsCa');
  url.searchParams.set('starttls', 'required');
  const domain = uniqueDomain();
  const sender = createSmtpSender({ url: url.toString(), from: 'cert@tocsin.test' });
  try {
    const out = await sender.send({ to: [{ address: `x@${domain}` }], subject: 's', text: 't', messageId: messageId('tocsin.test') });
    assert.ok(out.kind === 'transient' && out.stage === 'connect' && /ETLS|certificate/i.test(out.response), JSON.stringify(out));
    const verify = await sender.verify();
    assert.equal(verify.ok, false);
  } finally {
    await sender.close();
  }
});

test('DKIM: the delivered message carries our signature', opts, async () => {
  assert.ok(mta);
  const domain = uniqueDomain();
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const sender = createSmtpSender({ url: mta.url, from: 'cert@tocsin.test' });
  try {
    const out = await sender.send({
      to: [{ address: `security@${domain}` }], subject: 'signed', text: 'signed body\n', messageId: messageId('tocsin.test'),
      dkim: { domainName: 'tocsin.test', keySelector: 'sel2026', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
    });
    assert.equal(out.kind, 'accepted', JSON.stringify(out));
  } finally {
    await sender.close();
  }
  const [got] = await waitForMessages(mta, `security@${domain}`, 1);
  assert.match(String(got?.raw), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=tocsin\.test;[^]*?s=sel2026;/m);
});
