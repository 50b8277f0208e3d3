/**
 * The SMTP adapter against peers that fail on purpose (test/helpers/smtp-fault-peer.ts, smtp-server on 127.0.0.1):
 * every failure maps to the outcome the outbox relies on. Above all: a drop or a silence AFTER the final dot is
 * `uncertain` (the relay may have the message), the same BEFORE it is `transient` (nothing can have been accepted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { TocsinError } from '../src/core/errors.js';
import { classifySmtpError, createSmtpSender, type SendOutcome, type SmtpSenderOptions } from '../src/platform/mail/smtp-sender.js';
import { toHeaderText, type OutgoingMessage } from '../src/platform/mail/message.js';
import { startFaultPeer, type Fault, type FaultPeer } from './helpers/smtp-fault-peer.js';

let seq = 0;
function message(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  seq++;
  return {
    to: [{ address: 'security@org-a.test', name: 'Org A security' }],
    subject: `[Tocsin] 20260302-${String(seq).padStart(8, '0')} Exposed Exchange servers`,
    text: 'Your server 192.0.2.10 is exposed to CVE-2021-26855.\n',
    messageId: `<fault-${seq}-${randomBytes(4).toString('hex')}@tocsin.test>`,
    ...over,
  };
}

async function withPeer(fault: Fault, fn: (peer: FaultPeer, opts: SmtpSenderOptions) => Promise<void>): Promise<void> {
  const peer = await startFaultPeer(fault);
  try {
    await fn(peer, { url: peer.url, from: 'CERT <cert@tocsin.test>', greetingTimeoutMs: 2000, socketTimeoutMs: 2000 });
  } finally {
    await peer.close();
  }
}

async function sendOnce(opts: SmtpSenderOptions, m: OutgoingMessage = message()): Promise<SendOutcome> {
  const sender = createSmtpSender(opts);
  try {
    return await sender.send(m);
  } finally {
    await sender.close();
  }
}

test('a peer that accepts: accepted, with its reply and our Message-ID', async () => {
  await withPeer('accept', async (peer, opts) => {
    const m = message();
    const out = await sendOnce(opts, m);
    assert.equal(out.kind, 'accepted', JSON.stringify(out));
    assert.ok(out.kind === 'accepted' && /FAULTPEER/.test(out.response));
    assert.ok(out.kind === 'accepted' && out.messageId === m.messageId);
    assert.equal(peer.accepted.length, 1);
    const parsed = await simpleParser(peer.accepted[0]!);
    assert.equal(parsed.messageId, m.messageId);
    assert.equal(parsed.headers.get('auto-submitted'), 'auto-generated');
  });
});

test('421 at the greeting: transient 421 at connect, nothing sent', async () => {
  await withPeer('greeting-421', async (peer, opts) => {
    const out = await sendOnce(opts);
    assert.deepEqual({ kind: out.kind, code: out.kind === 'transient' ? out.code : -1, stage: out.kind === 'transient' ? out.stage : '' },
      { kind: 'transient', code: 421, stage: 'connect' }, JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 0);
  });
});

test('no greeting at all (stall): transient at connect after the greeting timeout', async () => {
  await withPeer('greeting-stall', async (peer, opts) => {
    const out = await sendOnce({ ...opts, greetingTimeoutMs: 300 });
    assert.equal(out.kind, 'transient', JSON.stringify(out));
    assert.ok(out.kind === 'transient' && out.code === null && out.stage === 'connect' && /ETIMEDOUT/.test(out.response), JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 0);
  });
});

test('connection refused: transient at connect', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  const out = await sendOnce({ url: `smtp://127.0.0.1:${port}`, from: 'cert@tocsin.test' });
  assert.equal(out.kind, 'transient', JSON.stringify(out));
  assert.ok(out.kind === 'transient' && out.code === null && out.stage === 'connect' && /ECONNREFUSED/.test(out.response), JSON.stringify(out));
});

test('450 at RCPT: transient 450 at rcpt', async () => {
  await withPeer('rcpt-450', async (peer, opts) => {
    const out = await sendOnce(opts);
    assert.ok(out.kind === 'transient' && out.code === 450 && out.stage === 'rcpt', JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 0);
  });
});

test('550 at RCPT: permanent 550 at rcpt, naming the recipient', async () => {
  await withPeer('rcpt-550', async (peer, opts) => {
    const out = await sendOnce(opts);
    assert.ok(out.kind === 'permanent' && out.code === 550 && out.stage === 'rcpt', JSON.stringify(out));
    assert.deepEqual(out.kind === 'permanent' ? out.rejected.map((r) => [r.address, r.code]) : [], [['security@org-a.test', 550]]);
    assert.equal(peer.bodiesReceived, 0);
  });
});

test('one of two recipients refused with 550: accepted for the other, the refusal listed', async () => {
  await withPeer('rcpt-550-second', async (peer, opts) => {
    const out = await sendOnce(opts, message({ to: [{ address: 'security@org-a.test' }, { address: 'gone@org-a.test' }] }));
    assert.equal(out.kind, 'accepted', JSON.stringify(out));
    assert.ok(out.kind === 'accepted');
    assert.deepEqual(out.accepted, ['security@org-a.test']);
    assert.deepEqual(out.rejected.map((r) => [r.address, r.code]), [['gone@org-a.test', 550]]);
    assert.equal(peer.accepted.length, 1);
  });
});

test('552 after the data: permanent 552 at data (the relay answered: not uncertain)', async () => {
  await withPeer('data-552', async (peer, opts) => {
    const out = await sendOnce(opts);
    assert.ok(out.kind === 'permanent' && out.code === 552 && out.stage === 'data', JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 1);
  });
});

test('451 after the data: transient 451 at data', async () => {
  await withPeer('data-451', async (peer, opts) => {
    const out = await sendOnce(opts);
    assert.ok(out.kind === 'transient' && out.code === 451 && out.stage === 'data', JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 1);
  });
});

test('connection dropped in the middle of the data: transient (no final dot, nothing accepted)', async () => {
  await withPeer('drop-mid-data', async (peer, opts) => {
    // Large enough that the socket and kernel buffers cannot hold it all when the peer hangs up.
    const big = randomBytes(12 * 1024 * 1024);
    const m = message({ attachments: [{ filename: 'big.bin', contentType: 'application/octet-stream', content: big }] });
    const out = await sendOnce({ ...opts, maxMessageBytes: 40 * 1024 * 1024 }, m);
    assert.equal(out.kind, 'transient', JSON.stringify(out));
    assert.ok(out.kind === 'transient' && out.code === null && out.stage === 'data', JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 0);
    assert.ok(peer.bytesReceived > 0 && peer.bytesReceived < big.length, `peer read ${peer.bytesReceived} bytes`);
  });
});

test('connection dropped after the final dot, before the reply: uncertain', async () => {
  await withPeer('drop-after-dot', async (peer, opts) => {
    const out = await sendOnce(opts);
    assert.equal(out.kind, 'uncertain', JSON.stringify(out));
    assert.ok(out.kind === 'uncertain' && /may have been accepted/.test(out.detail));
    assert.equal(peer.bodiesReceived, 1);
  });
});

test('no reply to the final dot (stall): uncertain after the socket timeout', async () => {
  await withPeer('stall-after-dot', async (peer, opts) => {
    const out = await sendOnce({ ...opts, socketTimeoutMs: 400 });
    assert.equal(out.kind, 'uncertain', JSON.stringify(out));
    assert.ok(out.kind === 'uncertain' && /ETIMEDOUT/.test(out.detail), JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 1);
  });
});

test('no reply to RCPT TO (stall): transient after the socket timeout, the same timeout as after the dot', async () => {
  await withPeer('stall-at-rcpt', async (peer, opts) => {
    const out = await sendOnce({ ...opts, socketTimeoutMs: 400 });
    assert.ok(out.kind === 'transient' && out.code === null && /ETIMEDOUT/.test(out.response) && out.stage !== 'data', JSON.stringify(out));
    assert.equal(peer.bodiesReceived, 0);
  });
});

test('verify: ok against a working relay, the transient outcome against a 421 greeting; nothing is sent', async () => {
  await withPeer('accept', async (peer, opts) => {
    const sender = createSmtpSender(opts);
    assert.deepEqual(await sender.verify(), { ok: true });
    await sender.close();
    assert.equal(peer.accepted.length, 0);
  });
  await withPeer('greeting-421', async (_peer, opts) => {
    const sender = createSmtpSender(opts);
    const v = await sender.verify();
    assert.ok(!v.ok && v.outcome.kind === 'transient' && v.outcome.code === 421, JSON.stringify(v));
    await sender.close();
  });
});

test('the classification table: replies decide; without a reply, the end of the body decides', () => {
  const e = (o: Record<string, unknown>): Error => Object.assign(new Error('x'), o);
  const none = { inSession: true, bodyStarted: false, bodyEnded: false };
  const sent = { inSession: true, bodyStarted: true, bodyEnded: true };
  assert.equal(classifySmtpError(e({ code: 'EENVELOPE', responseCode: 503, response: '503 bad sequence', command: 'RCPT TO' }), none).kind, 'transient');
  assert.equal(classifySmtpError(e({ code: 'EENVELOPE', responseCode: 553, response: '553 no', command: 'MAIL FROM' }), none).kind, 'permanent');
  assert.equal(classifySmtpError(e({ code: 'EMESSAGE', responseCode: 554, response: '554 spam', command: 'DATA' }), sent).kind, 'permanent');
  assert.equal(classifySmtpError(e({ code: 'ECONNECTION', responseCode: 421, response: '421 bye', command: 'CONN' }), sent).kind, 'transient');
  assert.equal(classifySmtpError(e({ code: 'ETIMEDOUT', command: 'CONN' }), sent).kind, 'uncertain');
  assert.equal(classifySmtpError(e({ code: 'ECONNECTION', command: 'CONN' }), none).kind, 'transient');
  // An auth failure is a 5xx but says nothing about the message: transient (fix the credentials, send again).
  const auth = classifySmtpError(e({ code: 'EAUTH', responseCode: 535, response: '535 bad', command: 'AUTH PLAIN' }), none);
  assert.ok(auth.kind === 'transient' && auth.stage === 'auth', JSON.stringify(auth));
});

test('pooled: 6 messages at once over at most 2 connections, each accepted once', async () => {
  await withPeer('accept', async (peer, opts) => {
    const sender = createSmtpSender({ ...opts, maxConnections: 2 });
    try {
      const outs = await Promise.all(Array.from({ length: 6 }, () => sender.send(message())));
      assert.deepEqual(outs.map((o) => o.kind), Array(6).fill('accepted'));
      assert.equal(peer.accepted.length, 6);
      assert.ok(peer.connections <= 2, `${peer.connections} connections`);
    } finally {
      await sender.close();
    }
  });
});

test('close() waits for the send on the wire and ends the queued ones as transient (nothing sent)', async () => {
  await withPeer('stall-after-dot', async (peer, opts) => {
    const sender = createSmtpSender({ ...opts, maxConnections: 1, socketTimeoutMs: 400 });
    let settled = 0;
    const sends = Array.from({ length: 4 }, () => sender.send(message()).then((o) => { settled++; return o; }));
    // Until one message is on the wire (its dot sent, the peer silent) while the others wait for the connection.
    while (peer.bodiesReceived < 1) await new Promise((r) => setTimeout(r, 10));
    await sender.close();
    assert.equal(settled, 4, 'close() returned only after every send had its outcome');
    const kinds = (await Promise.all(sends)).map((o) => (o.kind === 'transient' && /closed/.test(o.response) ? 'closed' : o.kind)).sort();
    assert.deepEqual(kinds, ['closed', 'closed', 'closed', 'uncertain']);
    assert.equal(peer.bodiesReceived, 1);
    assert.equal((await sender.send(message())).kind, 'transient');
  });
});

test('a pooled connection the relay dropped meanwhile: sent again on a new connection, accepted once', async () => {
  await withPeer('drop-second-mail', async (peer, opts) => {
    const sender = createSmtpSender({ ...opts, maxConnections: 1 });
    try {
      const first = await sender.send(message());
      const second = await sender.send(message());
      assert.deepEqual([first.kind, second.kind], ['accepted', 'accepted'], JSON.stringify(second));
      assert.equal(peer.accepted.length, 2);
      assert.equal(peer.connections, 2, 'the second message went over a new connection');
    } finally {
      await sender.close();
    }
  });
});

test('CR/LF in a subject, display name or header value is refused before anything is sent', async () => {
  await withPeer('accept', async (peer, opts) => {
    const sender = createSmtpSender(opts);
    try {
      const hostile: OutgoingMessage[] = [
        message({ subject: 'Warning\r\nBcc: victim@elsewhere.test' }),
        message({ to: [{ address: 'security@org-a.test', name: 'Org\r\nBcc: victim@elsewhere.test' }] }),
        message({ headers: { 'List-Id': 'x\nBcc: victim@elsewhere.test' } }),
        message({ headers: { 'Bcc': 'victim@elsewhere.test' } }),
        message({ headers: { 'X-Bad Name': 'v' } }),
        message({ to: [{ address: 'a@b.test>\r\nRCPT TO:<victim@elsewhere.test' }] }),
        message({ attachments: [{ filename: 'a.csv\r\nX-Evil: 1', contentType: 'text/csv', content: 'a' }] }),
      ];
      for (const m of hostile) {
        await assert.rejects(sender.send(m), (err: unknown) => err instanceof TocsinError && err.code === 'TOCSIN_MAIL_MESSAGE_INVALID');
      }
      await assert.rejects(
        sender.send(message({ dkim: { domainName: 'tocsin.test', keySelector: 's', privateKey: 'not a key' } })),
        (err: unknown) => err instanceof TocsinError && err.code === 'TOCSIN_MAIL_MESSAGE_INVALID',
      );
      assert.equal(peer.connections, 0);
      // Folded with toHeaderText, the same text goes out as one inert line.
      const ok = await sender.send(message({
        subject: toHeaderText('Warning\r\nBcc: victim@elsewhere.test <script>alert(1)</script>'),
        to: [{ address: 'security@org-a.test', name: toHeaderText('Org\r\nBcc: victim@elsewhere.test') }],
      }));
      assert.equal(ok.kind, 'accepted', JSON.stringify(ok));
      const raw = peer.accepted[0]!.toString('latin1');
      const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
      assert.doesNotMatch(head, /^Bcc:/im);
      const parsed = await simpleParser(peer.accepted[0]!);
      assert.equal(parsed.subject, 'Warning Bcc: victim@elsewhere.test <script>alert(1)</script>');
      assert.equal(parsed.headers.get('bcc'), undefined);
    } finally {
      await sender.close();
    }
  });
});
