/**
 * Follow-ups (issue 9 §2): `campaign follow-up ID --after 7d` warns again, through the real postfix, only the
 * organisations still exposed — not the one whose findings a later scan closed as patched, also when another
 * acknowledged without patching — and each follow-up refers to the first warning (In-Reply-To/References, the
 * ticket in the text). Both database backends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSmtpSender } from '../src/platform/mail/index.js';
import { acknowledge, approveCampaign, campaignStatus, createCampaign, previewCampaign, sendCampaign, type RenderContext } from '../src/services/campaigns.js';
import { foldFindings } from '../src/services/findings.js';
import { followUpCampaign, parseAfter } from '../src/services/follow-up.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate, PROXYLOGON, scan } from './helpers/mail-estate.js';
import { messagesFor, mtaOrSkip, uniqueDomain, waitForMessages } from './helpers/mta.js';

const SECRET = Buffer.from('follow-up-test-secret-0123456789');
const DAY = 86_400_000;

function ctx(): RenderContext {
  return { fromAddress: 'cert@cert.test', contactUrl: 'https://cert.test/scanning', ackSecret: SECRET, ackUrlBase: 'https://cert.test/ack/' };
}

test('--after durations', () => {
  assert.equal(parseAfter('7d'), 7 * DAY);
  assert.equal(parseAfter('36h'), 36 * 3_600_000);
  assert.equal(parseAfter('2w'), 14 * DAY);
  for (const bad of ['', '7', 'd7', '-1d', '1.5d', '7 days']) assert.throws(() => parseAfter(bad), /--after/);
});

const mta = mtaOrSkip();
const NAME = 'follow-up: only the still-exposed organisations get a second message, referring to the first warning';
if (mta.mta === null) test(NAME, { skip: mta.skip }, () => undefined);
else testEachBackend(NAME, async ({ database }) => {
  const m = mta.mta!;
  const db = database.db;
  const dom = uniqueDomain();
  const orgs = [
    { name: 'Alpha', network: '198.18.1.0/24', contact: `sec-alpha@${dom}`, ips: ['198.18.1.10', '198.18.1.11'] },
    { name: 'Beta', network: '198.18.2.0/24', contact: `sec-beta@${dom}`, ips: ['198.18.2.10'] },
    { name: 'Gamma', network: '198.18.3.0/24', contact: `sec-gamma@${dom}`, ips: ['198.18.3.10'] },
  ];
  await buildEstate(database, orgs);
  await foldFindings(db);
  const { id } = await createCampaign(db, { name: 'first', group: 'proxylogon', createdBy: 'tester', fromAddress: 'cert@cert.test' });
  await approveCampaign(db, id, 'lead');
  const sender = createSmtpSender({ url: m.url, from: 'CERT <cert@cert.test>' });
  try {
    assert.equal((await sendCampaign(db, id, sender, ctx())).sent, 3);
    const first = new Map((await campaignStatus(db, id)).records.map((r) => [r.org, r]));
    for (const o of orgs) await waitForMessages(m, o.contact, 1);

    // Beta patches (a later scan sees the fixed build); Alpha acknowledges but patches only one of its two hosts.
    await scan(database, [{ ip: '198.18.2.10', vulnerable: [] }, { ip: '198.18.1.11', vulnerable: [] }], new Date());
    const [alphaMail] = await messagesFor(m, orgs[0]!.contact);
    const token = /https:\/\/cert\.test\/ack\/(\S+)/.exec(alphaMail!.parsed.text ?? '')![1]!;
    assert.equal((await acknowledge(db, token, SECRET)).org, 'Alpha');

    // Too early: nobody.
    const early = await followUpCampaign(db, id, { afterMs: 7 * DAY, createdBy: 'tester' });
    assert.equal(early.id, null);
    assert.deepEqual(early.skipped.map((s) => s.org).sort(), ['Alpha', 'Beta', 'Gamma']);
    assert.match(early.skipped.find((s) => s.org === 'Beta')!.reason, /no longer exposed/);
    assert.match(early.skipped.find((s) => s.org === 'Gamma')!.reason, /last warned/);

    const later = new Date(Date.now() + 8 * DAY);
    const fu = await followUpCampaign(db, id, { afterMs: 7 * DAY, createdBy: 'tester', now: later });
    assert.ok(fu.id !== null);
    assert.deepEqual([...fu.queued].sort(), ['Alpha', 'Gamma']);
    assert.deepEqual(fu.skipped, [{ org: 'Beta', reason: 'no longer exposed (findings closed)' }]);
    // Asked again before it is sent: the follow-up on its way is not doubled (also when asked of the follow-up itself).
    const twice = await followUpCampaign(db, fu.id, { afterMs: 7 * DAY, createdBy: 'tester', now: later });
    assert.deepEqual([twice.id, twice.followUpOf, twice.skipped.filter((s) => /on its way/.test(s.reason)).length], [null, id, 2]);

    // Alpha's follow-up names only the host still open.
    const [preview] = await previewCampaign(db, fu.id, ctx(), 'Alpha');
    assert.match(preview!.message!.text, /198\.18\.1\.10/);
    assert.doesNotMatch(preview!.message!.text, /198\.18\.1\.11/);

    await approveCampaign(db, fu.id, 'lead');
    assert.equal((await sendCampaign(db, fu.id, sender, ctx())).sent, 2);
    const fuStatus = new Map((await campaignStatus(db, fu.id)).records.map((r) => [r.org, r]));
    for (const org of ['Alpha', 'Gamma']) {
      const o = orgs.find((x) => x.name === org)!;
      const got = await waitForMessages(m, o.contact, 2);
      assert.equal(got.length, 2, org);
      const second = got.find((d) => d.parsed.messageId === fuStatus.get(org)!.messageId)!;
      assert.ok(second !== undefined, org);
      assert.equal(second.parsed.inReplyTo, first.get(org)!.messageId);
      assert.equal(second.parsed.headers.get('references'), first.get(org)!.messageId);
      assert.match(second.parsed.text ?? '', new RegExp(`follow-up to ticket ${first.get(org)!.ticket}`));
      assert.match(String(second.parsed.html), new RegExp(`follow-up to ticket ${first.get(org)!.ticket}`));
      assert.notEqual(fuStatus.get(org)!.ticket, first.get(org)!.ticket);
    }
    // Beta: still exactly the one warning.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await messagesFor(m, orgs[1]!.contact)).length, 1);
    // The follow-ups are `notified` events on the still-open findings (Alpha's .10 and Gamma's host: 4 CVEs each).
    const notified = await db.selectFrom('finding_events').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'notified').where('who', '=', `campaign:${fu.id}`).executeTakeFirstOrThrow();
    assert.equal(Number(notified.n), 2 * PROXYLOGON.length);
  } finally {
    await sender.close();
  }
});
