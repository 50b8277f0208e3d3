import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { classifyInbound, parseContentType, parseDeliveryStatus } from './dsn.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'mail');
const VALUES = {
  DOMAIN: 'alpha.test',
  RCPT: 'sec@alpha.test',
  SUBJECT: '[20260302-00000042] Exchange servers of Alpha exposed to ProxyLogon',
  MESSAGE_ID: '<20260302-00000042.a1b2c3d4e5f6@cert.test>',
  TICKET: '20260302-00000042',
};

function fixture(name: string, crlf = false): string {
  const s = readFileSync(join(FIXTURES, name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: keyof typeof VALUES) => VALUES[k]);
  return crlf ? s.replace(/\r?\n/g, '\r\n') : s;
}

test('postfix bounce: failed 5.1.1 for the recipient, the returned message names our Message-ID and ticket', () => {
  for (const crlf of [false, true]) {
    const r = classifyInbound(fixture('postfix-bounce.eml', crlf));
    assert.equal(r.kind, 'dsn');
    assert.equal(r.reportingMta, 'mx.alpha.test');
    assert.equal(r.recipients.length, 1);
    const [x] = r.recipients;
    assert.deepEqual([x!.finalRecipient, x!.originalRecipient, x!.action, x!.status, x!.statusClass, x!.failed], ['sec@alpha.test', 'sec@alpha.test', 'failed', '5.1.1', 5, true]);
    assert.match(x!.diagnostic ?? '', /^550 5\.1\.1 <sec@alpha\.test>: Recipient address rejected: User unknown/);
    assert.deepEqual(r.refersTo, [VALUES.MESSAGE_ID]);
    assert.deepEqual(r.tickets, [VALUES.TICKET]);
    assert.equal(r.original?.subject, VALUES.SUBJECT);
    assert.equal(r.messageId, '<20260302100005.4XyZ1k2Qm0z9sPq@mx.alpha.test>');
  }
});

test('Exchange NDR: nested multipart/alternative before the report, headers-only return, folded diagnostic', () => {
  const r = classifyInbound(fixture('exchange-ndr.eml'));
  assert.equal(r.kind, 'dsn');
  assert.deepEqual(r.recipients.map((x) => [x.finalRecipient, x.action, x.status, x.failed]), [['sec@alpha.test', 'failed', '5.4.1', true]]);
  assert.match(r.recipients[0]!.diagnostic ?? '', /Access denied\. AS\(201806281\)/);
  assert.deepEqual(r.refersTo, [VALUES.MESSAGE_ID]);
  assert.deepEqual(r.tickets, [VALUES.TICKET]);
});

test('delayed DSN: action delayed, 4.x.x, not a failure', () => {
  const r = classifyInbound(fixture('postfix-delayed.eml'));
  assert.equal(r.kind, 'dsn');
  assert.deepEqual(r.recipients.map((x) => [x.action, x.status, x.statusClass, x.failed]), [['delayed', '4.4.1', 4, false]]);
  assert.deepEqual(r.refersTo, [VALUES.MESSAGE_ID]);
});

test('a human reply is a reply (In-Reply-To), an Exchange out-of-office an auto-reply (ticket in the subject only)', () => {
  const reply = classifyInbound(fixture('human-reply.eml'), `Re: ${VALUES.SUBJECT}`);
  assert.deepEqual([reply.kind, reply.refersTo, reply.tickets, reply.autoReason], ['reply', [VALUES.MESSAGE_ID], [VALUES.TICKET], null]);
  const oof = classifyInbound(fixture('exchange-oof.eml'));
  assert.deepEqual([oof.kind, oof.refersTo, oof.tickets], ['auto-reply', [], [VALUES.TICKET]]);
  assert.match(oof.autoReason ?? '', /Auto-Submitted: auto-generated/);
  // no Auto-Submitted header, but the subject says so
  const bare = classifyInbound(`From: a@b.test\nSubject: Out of Office: Re: [${VALUES.TICKET}] x\n\nback Monday\n`);
  assert.deepEqual([bare.kind, bare.autoReason], ['auto-reply', 'out-of-office subject']);
  const xauto = classifyInbound(`From: a@b.test\nX-Autoreply: yes\nIn-Reply-To: ${VALUES.MESSAGE_ID}\nSubject: thanks\n\nx\n`);
  assert.deepEqual([xauto.kind, xauto.autoReason], ['auto-reply', 'X-Autoreply']);
  // Auto-Submitted: no is a person
  assert.equal(classifyInbound(`Auto-Submitted: no\nIn-Reply-To: ${VALUES.MESSAGE_ID}\n\nhi\n`).kind, 'reply');
});

test('unrelated mail is other; a bounce without a report is bounce-unparsed (never acted on)', () => {
  assert.equal(classifyInbound('From: x@y.test\nSubject: lunch?\n\nhi\n').kind, 'other');
  const q = classifyInbound(`From: MAILER-DAEMON@old.test\nSubject: failure notice\nReturn-Path: <>\n\nHi. This is the qmail-send program.\n<sec@alpha.test>:\nSorry, no mailbox here by that name.\n--- Below this line is a copy of the message.\n\nSubject: ${VALUES.SUBJECT}\n`);
  assert.equal(q.kind, 'bounce-unparsed');
  assert.deepEqual(q.recipients, []);
});

test('hostile and malformed MIME never throws and stays bounded', () => {
  const cases = [
    '',
    '\r\n\r\n',
    'Content-Type: multipart/report; boundary=""\n\n--\n',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\n\n--x\nContent-Type: message/delivery-status\n\nAction: failed\nStatus: 9.9.9\n',
    `Content-Type: multipart/mixed; boundary="a"\n\n${'--a\nContent-Type: multipart/mixed; boundary="a"\n\n'.repeat(500)}`,
    `Subject: ${'A'.repeat(200_000)}\n\n`,
    `Content-Type: multipart/report; boundary=b\n\n${'--b\nContent-Type: text/plain\n\nx\n'.repeat(10_000)}--b--\n`,
    'Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n--b--\n',
    '\u0000\u0001\u0002: \u00ff\n\n',
  ];
  for (const c of cases) {
    const r = classifyInbound(c);
    assert.ok(['dsn', 'other', 'bounce-unparsed', 'reply', 'auto-reply'].includes(r.kind), c.slice(0, 40));
    assert.ok(r.recipients.length <= 100);
  }
  const bad = classifyInbound(cases[3]!);
  assert.deepEqual(bad.recipients.map((x) => [x.action, x.status, x.failed]), [['failed', null, true]]);
  // many recipient blocks: capped
  const many = parseDeliveryStatus(`Reporting-MTA: dns; a\n\n${'Final-Recipient: rfc822; x@y.test\nAction: failed\nStatus: 5.0.0\n\n'.repeat(1000)}`);
  assert.equal(many.recipients.length, 100);
});

test('content-type parameters: quoted, unquoted, escaped, case-insensitive names', () => {
  const ct = parseContentType('Multipart/Report; REPORT-TYPE=delivery-status; boundary="a\\"b;c"; x=1');
  assert.equal(ct.type, 'multipart/report');
  assert.equal(ct.params.get('report-type'), 'delivery-status');
  assert.equal(ct.params.get('boundary'), 'a"b;c');
  assert.equal(ct.params.get('x'), '1');
});
