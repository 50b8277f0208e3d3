/**
 * TOCSIN_SMTP_URL and TOCSIN_MAIL_FROM are validated at start (every problem listed, TOCSIN_CONFIG_INVALID), and
 * the adapter refuses what the configuration would refuse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspectConfig, readConfig } from '../src/core/config.js';
import { TocsinError } from '../src/core/errors.js';
import { parseMailFrom, parseSmtpUrl, redactSmtpUrl } from '../src/core/smtp-url.js';
import { createSmtpSender } from '../src/platform/mail/smtp-sender.js';
import { toHeaderText } from '../src/platform/mail/message.js';

const base = { TOCSIN_HOME: '/tmp/h7-config-test' };

test('valid mail settings: parsed, with defaults', () => {
  const { config, problems } = inspectConfig({ ...base, TOCSIN_SMTP_URL: 'smtps://cert%40x.test:p%2Fw@relay.example.net', TOCSIN_MAIL_FROM: 'CERT-XX <cert@example.net>' });
  assert.deepEqual(problems, []);
  assert.equal(config.smtpUrl, 'smtps://cert%40x.test:p%2Fw@relay.example.net');
  assert.equal(config.mailFrom, 'CERT-XX <cert@example.net>');
  const { relay } = parseSmtpUrl(config.smtpUrl ?? '');
  assert.deepEqual(relay && { secure: relay.secure, port: relay.port, user: relay.user, pass: relay.pass, startTls: relay.startTls, verify: relay.tlsRejectUnauthorized },
    { secure: true, port: 465, user: 'cert@x.test', pass: 'p/w', startTls: 'opportunistic', verify: true });
  assert.deepEqual(parseSmtpUrl('smtp://relay.test?starttls=required').relay?.port, 587);
  assert.deepEqual(parseMailFrom('cert@example.net').from, { address: 'cert@example.net', name: null });
  assert.equal(redactSmtpUrl('smtp://u:secret@relay.test:25'), 'smtp://u:***@relay.test:25');
});

test('unset mail settings are fine (only campaigns need them)', () => {
  const { config, problems } = inspectConfig(base);
  assert.deepEqual(problems, []);
  assert.equal(config.smtpUrl, null);
  assert.equal(config.mailFrom, null);
});

test('every bad mail setting is listed with its variable, and readConfig refuses with TOCSIN_CONFIG_INVALID', () => {
  const env = { ...base, TOCSIN_SMTP_URL: 'smtp://relay.test:25?starttls=maybe&foo=1&tlsCa=relative.pem', TOCSIN_MAIL_FROM: 'CERT\r\nBcc: x@y.test <cert@example.net>' };
  const { problems } = inspectConfig(env);
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.ok(problems.some((p) => /TOCSIN_SMTP_URL: starttls must be/.test(p)));
  assert.ok(problems.some((p) => /unknown parameter "foo"/.test(p)));
  assert.ok(problems.some((p) => /tlsCa must be an absolute path/.test(p)));
  assert.ok(problems.some((p) => /TOCSIN_MAIL_FROM must not contain control characters/.test(p)));
  assert.throws(() => readConfig(env), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_CONFIG_INVALID');
  for (const bad of ['http://relay.test', 'smtp://', 'not a url', 'smtps://relay.test?starttls=never', 'smtp://relay.test/path']) {
    assert.ok(inspectConfig({ ...base, TOCSIN_SMTP_URL: bad }).problems.length > 0, bad);
  }
  for (const bad of ['nobody', 'a@b@c.test', 'CERT <>', '<a b@c.test>']) {
    assert.ok(inspectConfig({ ...base, TOCSIN_MAIL_FROM: bad }).problems.length > 0, bad);
  }
});

test('the adapter refuses the same settings, and an unreadable tlsCa, with TOCSIN_CONFIG_INVALID', () => {
  const isConfig = (e: unknown): boolean => e instanceof TocsinError && e.code === 'TOCSIN_CONFIG_INVALID';
  assert.throws(() => createSmtpSender({ url: 'smtp://relay.test?starttls=maybe', from: 'cert@x.test' }), isConfig);
  assert.throws(() => createSmtpSender({ url: 'smtp://relay.test', from: 'not an address' }), isConfig);
  assert.throws(() => createSmtpSender({ url: 'smtp://relay.test?tlsCa=/nonexistent/ca.pem', from: 'cert@x.test' }), isConfig);
});

test('toHeaderText folds every control character to one space and caps the length', () => {
  assert.equal(toHeaderText('a\r\nBcc: x\u0000\u2028y\tz'), 'a Bcc: x y z');
  assert.equal(toHeaderText('x'.repeat(2000), 10).length, 10);
});
