/**
 * The pure campaign rules: hostile values escaped in every part of a warning (HTML, text, headers, CSV), the
 * template engine's refusals, selection and grouping, the recipient chain and opt-outs, ticket format, signed
 * acknowledgement tokens, and the outbox state machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCsv } from '../src/core/csv.js';
import {
  afterOutcome, applyOptOuts, compileTemplate, formatTicket, groupByOrganisation, isTicket, languageFor, MAX_TRANSIENT_ATTEMPTS, Pacer,
  recipientChain, renderMessage, renderTemplate, selectExposures, signAckToken, ticketsIn, verifyAckToken,
  type CampaignExposure, type CampaignSelection, type ExposureFact,
} from '../src/campaigns/index.js';
import { loadTemplateSet, templateLanguages } from '../src/services/campaigns.js';

const PROXYLOGON = ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'];
const SEL: CampaignSelection = { cves: PROXYLOGON, group: 'ProxyLogon', compromisedOnly: false, source: 'any', sector: null, orgs: [] };

function fact(ip: string, o: Partial<ExposureFact> = {}): ExposureFact {
  return {
    ip, port: 443, hostname: null, source: 'scan', feed: null, product: 'ms-exchange', build: '15.1.2176.2', buildPrecision: 'exact',
    vulnerable: [], indeterminate: [], reportedCves: [], compromised: false, seenAt: '2026-03-02T10:00:00.000Z', ...o,
  };
}

const HOSTILE = '<script>alert(1)</script>\r\nBcc: victim@evil.example\u202e';
const hostileExposure: CampaignExposure = {
  ip: '192.0.2.7', port: 443, hostname: `mail.${HOSTILE}`, build: '15.1.2176.2', source: 'scan',
  cves: [{ cve: 'CVE-2021-26855', evidence: 'confirmed-by-build', feed: null }, { cve: 'CVE-2021-27065', evidence: 'reported-by-feed', feed: 'shadowserver' }],
  compromised: true, seenAt: '2026-03-02T10:00:00.000Z', banner: `=HYPERLINK("http://evil.example")${HOSTILE}`,
};

function renderHostile(lang = 'en'): ReturnType<typeof renderMessage> {
  return renderMessage(loadTemplateSet('warning', lang), {
    campaignId: 7, campaignName: `March ${HOSTILE}`, ticket: '20260302-00000042', messageId: '<20260302-00000042.ab12@cert.example>',
    org: `Evil ${HOSTILE} Org`, exposures: [hostileExposure], group: 'ProxyLogon', cves: PROXYLOGON, from: 'cert@cert.example',
    to: ['security@org.example'], ackUrl: 'https://cert.example/ack/v1.x', contactUrl: 'https://cert.example/scanning',
  });
}

test('render: <script> and CRLF in organisation names, host names and banners are escaped in HTML, text, headers and CSV', () => {
  for (const lang of ['en', 'de']) {
    const m = renderHostile(lang);
    // headers: one line each, no CR/LF, no injected Bcc header
    for (const [k, v] of [['Subject', m.subject], ['Message-ID', m.messageId], ...Object.entries(m.headers)] as const) {
      assert.doesNotMatch(v, /[\r\n\u202e]/, `${k}: ${JSON.stringify(v)}`);
    }
    assert.match(m.subject, /^\[20260302-00000042\] /);
    assert.match(m.subject, /Evil <script>alert\(1\)<\/script>Bcc: victim@evil\.example Org/);
    // HTML: shown, not run
    assert.doesNotMatch(m.html, /<script>/);
    assert.match(m.html, /Evil &lt;script&gt;alert\(1\)&lt;\/script&gt;Bcc: victim@evil\.example Org/);
    assert.match(m.html, /mail\.&lt;script&gt;/);
    assert.doesNotMatch(m.html, /\u202e/);
    // text: no line can start with an injected header, no bidi override
    assert.doesNotMatch(m.text, /^Bcc:/m);
    assert.doesNotMatch(m.text, /[\r\u202e]/);
    assert.match(m.text, /mail\.<script>alert\(1\)<\/script>Bcc: victim@evil\.example/);
    // CSV: formula guarded, CR/LF gone, one row per CVE
    const csv = m.attachments[0]!;
    assert.equal(csv.filename, 'tocsin-20260302-00000042.csv');
    const rows = parseCsv(csv.content);
    assert.equal(rows.length, 3, csv.content);
    assert.deepEqual(rows[0]!.slice(0, 7), ['ticket', 'ip', 'port', 'hostname', 'build', 'cve', 'evidence']);
    const banner = rows[1]![10]!;
    assert.ok(banner.startsWith("'=HYPERLINK"), banner);
    assert.doesNotMatch(csv.content.replace(/\r\n/g, ''), /[\r\n]/);
    assert.equal(rows[1]![6], 'confirmed by build');
    assert.equal(rows[2]![6], 'reported by Shadowserver');
  }
});

test('render: the message carries the evidence words, remediation, the forensics kit and the acknowledgement link', () => {
  const m = renderHostile('en');
  assert.match(m.text, /CVE-2021-26855: confirmed by build/);
  assert.match(m.text, /CVE-2021-27065: reported by Shadowserver/);
  assert.match(m.text, /Patched is not safe/);
  assert.match(m.text, /tocsin forensics/);
  assert.match(m.text, /EOMT/);
  assert.match(m.text, /https:\/\/msrc\.microsoft\.com\/update-guide\/vulnerability\/CVE-2021-26855/);
  assert.match(m.text, /https:\/\/cert\.example\/ack\/v1\.x/);
  assert.match(m.html, /href="https:\/\/cert\.example\/ack\/v1\.x"/);
  assert.equal(m.headers['Auto-Submitted'], 'auto-generated');
  assert.match(m.headers['List-Id']!, /<campaign-7\.cert\.example>$/);
  const notVisible = renderMessage(loadTemplateSet('warning', 'en'), {
    campaignId: 1, campaignName: 'x', ticket: '20260302-00000001', messageId: '<a@b.example>', org: 'O',
    exposures: [{ ...hostileExposure, compromised: false, cves: [{ cve: 'CVE-2021-26855', evidence: 'update-not-visible', feed: null }] }],
    group: null, cves: ['CVE-2021-26855'], from: 'a@b.example', to: ['x@y.example'], ackUrl: null, contactUrl: 'https://c.example',
  });
  assert.match(notVisible.text, /CVE-2021-26855: security update not visible/);
  assert.doesNotMatch(notVisible.text, /confirm that you received/);
});

test('templates: every shipped language compiles; the engine refuses unknown names, unclosed blocks and multi-line headers', () => {
  const langs = templateLanguages('warning');
  assert.ok(langs.includes('en') && langs.includes('de'), langs.join(','));
  for (const l of langs) loadTemplateSet('warning', l);
  assert.throws(() => renderTemplate(compileTemplate('t', 'Hello {{nope}}'), { org: 'x' }, 'text'), /TOCSIN_TEMPLATE_INVALID|no such value/);
  assert.throws(() => compileTemplate('t', '{{#each list}}x'), /not closed/);
  assert.throws(() => compileTemplate('t', '{{/if}}'), /closes nothing/);
  assert.throws(() => compileTemplate('t', '{{ org }'), /not a tag/);
  assert.throws(() => renderTemplate(compileTemplate('t', 'a\nb {{org}}'), { org: 'x' }, 'header'), /one line/);
  const list = compileTemplate('t', '{{#each xs}}\n- {{name}} of {{org}}\n{{/each}}\n{{#if none}}yes{{else}}no{{/if}}');
  assert.equal(renderTemplate(list, { org: 'O', none: [], xs: [{ name: 'a' }, { name: '<b>' }] }, 'html'), '- a of O\n- &lt;b&gt; of O\nno');
});

test('selection: vulnerable, indeterminate and feed-reported hosts are in, with the strongest evidence; others out', () => {
  const facts = [
    fact('192.0.2.1', { vulnerable: ['CVE-2021-26855'] }),
    fact('192.0.2.2', { indeterminate: ['CVE-2021-26855'], buildPrecision: 'cu' }),
    fact('192.0.2.3', { source: 'feed', feed: 'shadowserver', build: '15.1.2176', reportedCves: ['CVE-2021-27065'] }),
    fact('192.0.2.4', { vulnerable: ['CVE-2021-34473'] }), // ProxyShell only: not selected
    // our scan read a patched build: an old feed claim does not put it back in
    fact('192.0.2.5', { feed: 'shadowserver', reportedCves: ['CVE-2021-26855'] }),
    fact('192.0.2.6', { source: 'feed', feed: 'shadowserver', compromised: true, build: null, reportedCves: [] }),
  ];
  const got = selectExposures(facts, SEL);
  assert.deepEqual(got.map((e) => [e.ip, e.cves.map((c) => `${c.cve}:${c.evidence}`).join(' ')]), [
    ['192.0.2.1', 'CVE-2021-26855:confirmed-by-build'],
    ['192.0.2.2', 'CVE-2021-26855:update-not-visible'],
    ['192.0.2.3', 'CVE-2021-27065:reported-by-feed'],
  ]);
  assert.deepEqual(selectExposures(facts, { ...SEL, source: 'feed' }).map((e) => e.ip), ['192.0.2.3']);
  assert.deepEqual(selectExposures(facts, { ...SEL, source: 'scan' }).map((e) => e.ip), ['192.0.2.1', '192.0.2.2']);
  assert.deepEqual(selectExposures(facts, { ...SEL, compromisedOnly: true }).map((e) => e.ip), ['192.0.2.6']);

  const orgs = new Map([[1, { name: 'Alpha', sector: 'health' }], [2, { name: 'Beta', sector: 'energy' }]]);
  const owner = (f: ExposureFact): number | null => (f.ip === '192.0.2.1' ? 1 : f.ip === '192.0.2.2' || f.ip === '192.0.2.4' ? 2 : null);
  const g = groupByOrganisation(facts, owner, orgs, SEL);
  assert.deepEqual(g.groups.map((x) => [x.orgId, x.exposures.map((e) => e.ip)]), [[1, ['192.0.2.1']], [2, ['192.0.2.2']]]);
  assert.equal(g.unattributed, 1); // 192.0.2.3 (selected, no owner); .5 and .6 are not selected
  assert.deepEqual(groupByOrganisation(facts, owner, orgs, { ...SEL, sector: 'ENERGY' }).groups.map((x) => x.orgId), [2]);
  assert.deepEqual(groupByOrganisation(facts, owner, orgs, { ...SEL, orgs: ['alpha'] }).groups.map((x) => x.orgId), [1]);
});

test('recipients: security, else abuse, else technical, then network abuse mailboxes, then the fallback; opt-outs honoured', () => {
  const org = {
    contacts: [
      { role: 'technical' as const, email: 'tech@a.example', language: null },
      { role: 'security' as const, email: 'sec@a.example', language: 'de' },
      { role: 'abuse' as const, email: 'abuse@a.example', language: null },
      { role: 'abuse' as const, email: 'SEC@a.example', language: null },
      { role: 'security' as const, email: 'bad\r\nBcc: x@y.example', language: null },
    ],
    networkAbuseMailboxes: ['abuse@isp.example'],
  };
  assert.deepEqual(recipientChain(org, 'cert@national.example'), [
    { source: 'security', emails: ['sec@a.example'] },
    { source: 'abuse', emails: ['abuse@a.example'] },
    { source: 'technical', emails: ['tech@a.example'] },
    { source: 'network-abuse-mailbox', emails: ['abuse@isp.example'] },
    { source: 'fallback', emails: ['cert@national.example'] },
  ]);
  assert.deepEqual(recipientChain({ contacts: [], networkAbuseMailboxes: [] }, null), []);
  assert.equal(languageFor(org, recipientChain(org, null), ['en', 'de'], 'en'), 'de');
  assert.equal(languageFor(org, recipientChain(org, null), ['en'], 'en'), 'en');

  const now = new Date('2026-03-02T00:00:00Z');
  const ex = selectExposures([fact('192.0.2.1', { vulnerable: ['CVE-2021-26855', 'CVE-2021-27065'] })], SEL);
  assert.equal(applyOptOuts({ optOuts: [{ condition: 'all', expiresAt: null }] }, ex, now).suppressed, 'opt-out: all');
  assert.equal(applyOptOuts({ optOuts: [{ condition: 'all', expiresAt: '2026-01-01T00:00:00Z' }] }, ex, now).suppressed, null);
  const partial = applyOptOuts({ optOuts: [{ condition: 'cve:CVE-2021-26855', expiresAt: null }] }, ex, now);
  assert.deepEqual(partial.exposures[0]!.cves.map((c) => c.cve), ['CVE-2021-27065']);
  assert.match(applyOptOuts({ optOuts: [{ condition: 'source:scan', expiresAt: null }] }, ex, now).suppressed ?? '', /opt-out: source:scan/);
});

test('tickets: YYYYMMDD-NNNNNNNN, found in a reply subject', () => {
  assert.equal(formatTicket(new Date('2026-03-02T23:59:59Z'), 42), '20260302-00000042');
  assert.ok(isTicket('20260302-00000042'));
  assert.ok(!isTicket('20260231-00000042'));
  assert.ok(!isTicket('2026030-200000042'));
  assert.deepEqual(ticketsIn('Re: [20260302-00000042] Exchange servers'), ['20260302-00000042']);
});

test('acknowledgement token: verifies, expires, and refuses tampering or another secret', () => {
  const secret = Buffer.from('0123456789abcdef0123456789abcdef');
  const now = new Date('2026-03-02T00:00:00Z');
  const token = signAckToken(secret, '20260302-00000042', new Date(now.getTime() + 86_400_000));
  const ok = verifyAckToken(secret, token, now);
  assert.ok(ok.ok && ok.claims.ticket === '20260302-00000042');
  assert.deepEqual(verifyAckToken(secret, token, new Date(now.getTime() + 2 * 86_400_000)), { ok: false, reason: 'expired' });
  assert.deepEqual(verifyAckToken(secret, token.replace('00000042', '00000043'), now), { ok: false, reason: 'bad-signature' });
  const longer = token.replace(/\.(\d+)\./, (_, e: string) => `.${Number(e) + 999999}.`);
  assert.deepEqual(verifyAckToken(secret, longer, now), { ok: false, reason: 'bad-signature' });
  assert.deepEqual(verifyAckToken(Buffer.from('another secret of 32 bytes......'), token, now), { ok: false, reason: 'bad-signature' });
  assert.deepEqual(verifyAckToken(secret, 'garbage', now), { ok: false, reason: 'malformed' });
  assert.throws(() => signAckToken(Buffer.from('short'), '20260302-00000042', now), /at least 16 bytes/);
});

test('outbox: 4xx defers with growing backoff then gives up; 5xx moves down the chain then bounces; in-flight is uncertain', () => {
  const now = new Date('2026-03-02T00:00:00Z');
  const d1 = afterOutcome({ step: 0, steps: 2, transientFailures: 0 }, { kind: 'transient', reply: '450 busy' }, now);
  assert.equal(d1.state, 'deferred');
  assert.equal(d1.nextAttemptAt!.getTime() - now.getTime(), 60_000);
  const d2 = afterOutcome({ step: 0, steps: 2, transientFailures: 1 }, { kind: 'transient', reply: '450 busy' }, now);
  assert.ok(d2.nextAttemptAt!.getTime() - now.getTime() > 60_000);
  assert.equal(afterOutcome({ step: 0, steps: 2, transientFailures: MAX_TRANSIENT_ATTEMPTS - 1 }, { kind: 'transient', reply: '450' }, now).state, 'bounced');
  const b = afterOutcome({ step: 0, steps: 2, transientFailures: 3 }, { kind: 'permanent', reply: '550 no such user' }, now);
  assert.deepEqual([b.state, b.step, b.transientFailures], ['queued', 1, 0]);
  assert.equal(afterOutcome({ step: 1, steps: 2, transientFailures: 0 }, { kind: 'permanent', reply: '550' }, now).state, 'bounced');
  assert.equal(afterOutcome({ step: 0, steps: 1, transientFailures: 0 }, { kind: 'uncertain', reply: 'timeout after DATA' }, now).state, 'uncertain');
  assert.equal(afterOutcome({ step: 0, steps: 1, transientFailures: 0 }, { kind: 'accepted', reply: '250 ok' }, now).state, 'sent');
});

test('pacing: overall rate and per-domain limit', () => {
  const p = new Pacer(10, 2);
  assert.equal(p.waitMs(['a.example'], 0), 0);
  p.took(['a.example'], 0);
  assert.equal(p.waitMs(['b.example'], 0), 100);
  p.took(['a.example'], 100);
  assert.equal(p.waitMs(['a.example'], 200), 60_000 - 200);
  assert.equal(p.waitMs(['b.example'], 200), 0);
});
