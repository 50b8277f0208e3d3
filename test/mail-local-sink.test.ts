/**
 * The demo's local sink: messages sent through the real SMTP adapter land as .eml files under
 * TOCSIN_HOME/mail/<date>/, the reply names the file, and the size cap holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { startLocalSink, type SavedMail } from '../src/platform/mail/local-sink.js';
import { createSmtpSender, type SendOutcome } from '../src/platform/mail/smtp-sender.js';

test('the sink saves each message as an .eml under TOCSIN_HOME/mail/<date>/ and names it in the reply', async () => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-sink-'));
  const reported: SavedMail[] = [];
  const sink = await startLocalSink({ home, onMessage: (s) => reported.push(s), now: () => new Date('2026-03-02T10:11:12Z') });
  const sender = createSmtpSender({ url: sink.url, from: 'CERT <cert@tocsin.test>' });
  try {
    const outs: SendOutcome[] = [];
    for (const i of [1, 2]) {
      outs.push(await sender.send({
        to: [{ address: `security@org${i}.test` }, { address: `abuse@org${i}.test` }],
        subject: `warning ${i}`, text: `body ${i}\n`, messageId: `<sink-${i}@tocsin.test>`,
      }));
    }
    assert.deepEqual(outs.map((o) => o.kind), ['accepted', 'accepted']);
    assert.equal(reported.length, 2);
    assert.deepEqual(readdirSync(join(home, 'mail')), ['2026-03-02']);
    assert.deepEqual(readdirSync(join(home, 'mail', '2026-03-02')).filter((f) => f.endsWith('.eml')).length, 2);
    for (const [i, s] of reported.entries()) {
      const out = outs[i];
      assert.ok(out?.kind === 'accepted' && out.response.includes(s.path), `reply names ${s.path}`);
      assert.ok(s.path.startsWith(join(home, 'mail', '2026-03-02') + '/') && s.path.endsWith('.eml'));
      assert.deepEqual(s.recipients, [`security@org${i + 1}.test`, `abuse@org${i + 1}.test`]);
      const parsed = await simpleParser(readFileSync(s.path));
      assert.equal(parsed.messageId, `<sink-${i + 1}@tocsin.test>`);
      assert.equal(parsed.subject, `warning ${i + 1}`);
      assert.equal(parsed.headers.get('x-tocsin-envelope-to'), `security@org${i + 1}.test, abuse@org${i + 1}.test`);
    }
    assert.equal(sink.saved.length, 2);
  } finally {
    await sender.close();
    await sink.close();
    rmSync(home, { recursive: true, force: true });
  }
});

test('the sink refuses a message over its cap with 552 and saves nothing', async () => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-sink-'));
  const sink = await startLocalSink({ home, maxMessageBytes: 64 * 1024 });
  const sender = createSmtpSender({ url: sink.url, from: 'cert@tocsin.test' });
  try {
    const out = await sender.send({
      to: [{ address: 'security@org.test' }], subject: 'big', text: 'x'.repeat(200 * 1024), messageId: '<big@tocsin.test>',
    });
    assert.ok(out.kind === 'permanent' && out.code === 552, JSON.stringify(out));
    assert.equal(sink.saved.length, 0);
    assert.deepEqual(readdirSync(join(home, 'mail')), []);
  } finally {
    await sender.close();
    await sink.close();
    rmSync(home, { recursive: true, force: true });
  }
});
