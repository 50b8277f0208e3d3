/**
 * Campaigns end to end on real PostgreSQL (both backends) and real SMTP servers: the estate is built through the
 * real services (constituency import, scan store), the campaign through services/campaigns.ts, the messages go
 * through the SMTP adapter (src/platform/mail) to an SMTP peer on 127.0.0.1 (per-recipient 450/550/stall) or to
 * the real postfix of scripts/ci-postfix.sh, and are read back and parsed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { csvDocument, DATA_FILE_CSV } from '../src/core/csv.js';
import type { Database } from '../src/platform/db/connect.js';
import { campaignMessages, withSendLock } from '../src/platform/db/campaign-store.js';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { createScanStore } from '../src/platform/db/scan-store.js';
import { createSmtpSender } from '../src/platform/mail/index.js';
import type { AttemptResult } from '../src/scan/ports.js';
import {
  acknowledge, approveCampaign, campaignStatus, cancelCampaign, createCampaign, previewCampaign, resendMessage, sendCampaign,
  type RenderContext, type StatusRecord,
} from '../src/services/campaigns.js';
import { importConstituency } from '../src/services/constituency.js';
import { foldFindings } from '../src/services/findings.js';
import { startCampaignPeer } from './helpers/campaign-peer.js';
import { testEachBackend } from './helpers/db.js';
import { mtaOrSkip, uniqueDomain, type Mta } from './helpers/mta.js';

const PROXYLOGON = ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'];
const SECRET = Buffer.from('campaign-test-secret-0123456789abcdef');
const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'tocsin.ts');

interface HostSpec {
  readonly ip: string;
  readonly vulnerable?: readonly string[];
  readonly indeterminate?: readonly string[];
  readonly hostname?: string | null;
}
interface OrgSpec {
  readonly name: string;
  readonly network: string;
  readonly contact?: string;
  readonly abuse?: string;
  readonly sector?: string;
  readonly hosts: readonly HostSpec[];
}

function answered(h: HostSpec, at: string): AttemptResult {
  const record: ScanRecord = {
    ip: h.ip, port: 443, hostname: h.hostname ?? null, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2',
    buildPrecision: h.indeterminate === undefined ? 'exact' : 'cu', cu: 'CU19', su: null, vulnerable: [...(h.vulnerable ?? [])],
    indeterminate: [...(h.indeterminate ?? [])], evidence: [], scannedAt: at, status: 200, notes: [],
  };
  return { ip: h.ip, port: 443, hostname: h.hostname ?? null, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at };
}

/** Registry (a CSV import, as an analyst would) and one finished scan of every org's hosts, plus `extra` unowned hosts. */
async function buildEstate(database: Database, orgs: readonly OrgSpec[], extra: readonly HostSpec[] = []): Promise<void> {
  const db = database.db;
  const csv = csvDocument(['organisation', 'sector', 'networks', 'contact', 'abuse_contact'],
    orgs.map((o) => [o.name, o.sector ?? 'health', o.network, o.contact ?? '', o.abuse ?? '']), DATA_FILE_CSV);
  const report = await importConstituency(createConstituencyStore(db), { files: [{ name: 'orgs.csv', bytes: Buffer.from(csv) }], format: 'auto', who: 'tester' });
  assert.equal(report.files[0]?.imported, orgs.length, JSON.stringify(report.files));
  const scans = createScanStore(db, { kbRevision: 'test' });
  const scan = await scans.createScan({ targets: ['198.18.0.0/15'], ports: [443], options: {} });
  const hosts = [...orgs.flatMap((o) => o.hosts), ...extra];
  await scans.recordBatch(scan.id, hosts.map((h, i) => answered(h, new Date(Date.UTC(2026, 2, 2, 10, 0, i)).toISOString())));
  await scans.finishScan(scan.id, 'finished');
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

function ctxFor(now?: () => Date): RenderContext {
  return {
    fromAddress: 'cert@cert.test', contactUrl: 'https://cert.test/scanning', ackSecret: SECRET, ackUrlBase: 'https://cert.test/ack/',
    ...(now === undefined ? {} : { now }),
  };
}

function byOrg(records: readonly StatusRecord[]): Map<string, StatusRecord> {
  return new Map(records.map((r) => [r.org, r]));
}

const HOSTILE_ORG = '<script>alert(1)</script> Beta "Org"';

function faultEstate(): OrgSpec[] {
  return [
    { name: 'Alpha', network: '198.18.1.0/24', contact: 'sec@alpha.test', hosts: [{ ip: '198.18.1.10', vulnerable: PROXYLOGON }, { ip: '198.18.1.11', indeterminate: ['CVE-2021-26855'] }] },
    { name: HOSTILE_ORG, network: '198.18.2.0/24', contact: 'sec@beta.test', hosts: [{ ip: '198.18.2.10', vulnerable: ['CVE-2021-26855'], hostname: 'owa.<b>beta</b>.test' }] },
    { name: 'Gamma', network: '198.18.3.0/24', contact: 'nobody@gamma.test', abuse: 'abuse@gamma.test', hosts: [{ ip: '198.18.3.10', vulnerable: ['CVE-2021-27065'] }] },
    { name: 'Delta', network: '198.18.4.0/24', contact: 'busy@delta.test', hosts: [{ ip: '198.18.4.10', vulnerable: ['CVE-2021-26855'] }] },
    { name: 'Epsilon', network: '198.18.5.0/24', contact: 'sec@epsilon.test', hosts: [{ ip: '198.18.5.10', vulnerable: ['CVE-2021-26855'] }] },
    { name: 'Zeta', network: '198.18.6.0/24', hosts: [{ ip: '198.18.6.10', vulnerable: ['CVE-2021-26855'] }] },
    // ProxyShell only: not in a ProxyLogon campaign
    { name: 'Eta', network: '198.18.7.0/24', contact: 'sec@eta.test', sector: 'energy', hosts: [{ ip: '198.18.7.10', vulnerable: ['CVE-2021-34473'] }] },
  ];
}

testEachBackend('campaign: one message per organisation; 550 moves down the chain; 450 defers then sends; opt-outs, no contact, ack, lock', async ({ database }) => {
  const db = database.db;
  await buildEstate(database, faultEstate(), [{ ip: '198.19.0.9', vulnerable: ['CVE-2021-26855'] }]);
  await createConstituencyStore(db).addEntry('Epsilon', { kind: 'opt-out', condition: 'all', expiresAt: null }, 'tester');
  await foldFindings(db);
  const t0 = new Date();
  const created = await createCampaign(db, { name: 'ProxyLogon March', group: 'proxylogon', createdBy: 'tester', fromAddress: 'cert@cert.test' });
  assert.deepEqual([created.queued, created.suppressed, created.unattributed], [4, 2, 1]);

  await assert.rejects(sendCampaign(db, created.id, null, ctxFor()), /not approved/);
  const [preview] = await previewCampaign(db, created.id, ctxFor(), 'alpha');
  assert.match(preview!.message!.subject, /^\[\d{8}-\d{8}\] Exchange servers of Alpha exposed to ProxyLogon$/);
  assert.match(preview!.message!.text, /198\.18\.1\.11:443.*\n\s+CVE-2021-26855: security update not visible/);
  await approveCampaign(db, created.id, 'lead');

  const peer = await startCampaignPeer();
  const sender = createSmtpSender({ url: peer.url, from: 'CERT <cert@cert.test>' });
  try {
    // a second sender for the same campaign is refused while the first holds the lock
    await withSendLock(db, created.id, async () => {
      await assert.rejects(sendCampaign(db, created.id, sender, ctxFor()), (e: Error & { code?: string }) => e.code === 'TOCSIN_CAMPAIGN_BUSY');
    });
    const first = await sendCampaign(db, created.id, sender, ctxFor());
    assert.deepEqual([first.sent, first.deferred, first.rerouted, first.bounced, first.uncertain], [3, 1, 1, 0, 0]);
    let st = byOrg((await campaignStatus(db, created.id)).records);
    assert.equal(st.get('Alpha')!.state, 'sent');
    assert.match(st.get('Alpha')!.ticket, /^\d{8}-\d{8}$/);
    assert.equal(st.get(HOSTILE_ORG)!.state, 'sent');
    assert.deepEqual([st.get('Gamma')!.state, st.get('Gamma')!.recipients, st.get('Gamma')!.attempts], ['sent', ['abuse@gamma.test'], 2]);
    assert.equal(st.get('Delta')!.state, 'deferred');
    assert.match(st.get('Delta')!.smtpReply ?? '', /450/);
    assert.deepEqual([st.get('Epsilon')!.state, st.get('Epsilon')!.reason], ['suppressed', 'opt-out: all']);
    assert.deepEqual([st.get('Zeta')!.state, st.get('Zeta')!.reason], ['suppressed', 'no-contact']);
    assert.equal(st.has('Eta'), false);
    // each sent message is a `notified` event on the findings it told about (Alpha 4 + 1, Beta 1, Gamma 1)
    const notified = async (): Promise<number> => Number((await db.selectFrom('finding_events').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'notified').where('who', '=', `campaign:${created.id}`).executeTakeFirstOrThrow()).n);
    assert.equal(await notified(), 7);

    // Deferred: not due yet, nothing is sent; once due, Delta goes out, and nobody else gets a second message.
    assert.equal((await sendCampaign(db, created.id, sender, ctxFor())).considered, 0);
    const later = (): Date => new Date(t0.getTime() + 10 * 60_000);
    const second = await sendCampaign(db, created.id, sender, ctxFor(later));
    assert.deepEqual([second.considered, second.sent], [1, 1]);
    assert.equal((await sendCampaign(db, created.id, sender, ctxFor(later))).considered, 0);
    st = byOrg((await campaignStatus(db, created.id)).records);
    assert.equal(st.get('Delta')!.state, 'sent');

    const perRecipient = new Map<string, number>();
    for (const m of peer.accepted) for (const r of m.recipients) perRecipient.set(r, (perRecipient.get(r) ?? 0) + 1);
    assert.deepEqual([...perRecipient].sort(), [['abuse@gamma.test', 1], ['busy@delta.test', 1], ['sec@alpha.test', 1], ['sec@beta.test', 1]]);

    // Each message holds its own organisation's hosts only, and the hostile name is escaped in every part.
    for (const m of peer.accepted) {
      const parsed = await simpleParser(m.raw);
      const org = { 'sec@alpha.test': 1, 'sec@beta.test': 2, 'abuse@gamma.test': 3, 'busy@delta.test': 4 }[m.recipients[0]!]!;
      const seen = new Set([...(parsed.text ?? '').matchAll(/198\.18\.(\d+)\.\d+/g)].map((x) => Number(x[1])));
      assert.deepEqual([...seen], [org], parsed.text);
      assert.equal(parsed.headers.get('auto-submitted'), 'auto-generated');
      assert.match(m.raw.toString('latin1'), /^List-Id: ProxyLogon March <campaign-\d+\.cert\.test>\r?$/im);
      const csv = parsed.attachments.find((a) => a.filename?.endsWith('.csv'));
      assert.ok(csv !== undefined);
      assert.doesNotMatch(csv.content.toString('utf8'), new RegExp(`198\\.18\\.(?!${org}\\.)`));
      if (org === 2) {
        assert.equal(parsed.subject?.includes('<script>alert(1)</script> Beta "Org"'), true, parsed.subject);
        assert.doesNotMatch(String(parsed.html), /<script>|<b>beta/);
        assert.match(String(parsed.html), /&lt;script&gt;alert\(1\)&lt;\/script&gt; Beta &quot;Org&quot;/);
        assert.match(String(parsed.html), /owa\.&lt;b&gt;beta&lt;\/b&gt;\.test/);
        assert.equal(parsed.headers.has('bcc'), false);
      }
      if (org === 1) {
        // the acknowledgement link works once, as the organisation's acknowledgement
        const token = /https:\/\/cert\.test\/ack\/(\S+)/.exec(parsed.text ?? '')?.[1];
        assert.ok(token !== undefined, parsed.text);
        assert.deepEqual(await acknowledge(db, token, SECRET), { ticket: st.get('Alpha')!.ticket, org: 'Alpha', first: true });
        assert.equal((await acknowledge(db, token, SECRET)).first, false);
        await assert.rejects(acknowledge(db, token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA'), SECRET), /bad-signature/);
      }
    }
    assert.equal(byOrg((await campaignStatus(db, created.id)).records).get('Alpha')!.state, 'acknowledged');
    assert.equal(await notified(), 8);
    const acked = await db.selectFrom('finding_events').select((eb) => eb.fn.countAll<number>().as('n')).where('kind', '=', 'acknowledged').executeTakeFirstOrThrow();
    assert.equal(Number(acked.n), 5);
    await assert.rejects(resendMessage(db, created.id, 'Gamma', 'lead'), /only an uncertain or bounced message/);

    // A fallback contact gets the warning of an organisation without contacts; a cancelled campaign sends nothing.
    const withFallback = await createCampaign(db, { name: 'fallback', cves: ['CVE-2021-26855'], orgs: ['zeta'], createdBy: 'tester', fallbackContact: 'national@cert.test' });
    const [zeta] = (await campaignStatus(db, withFallback.id)).records;
    assert.deepEqual([zeta!.state, zeta!.recipients], ['queued', ['national@cert.test']]);
    await approveCampaign(db, withFallback.id, 'lead');
    await cancelCampaign(db, withFallback.id, 'lead');
    await assert.rejects(sendCampaign(db, withFallback.id, sender, ctxFor()), /cancelled/);
    assert.equal((await campaignMessages(db, withFallback.id))[0]!.state, 'cancelled');
  } finally {
    await sender.close();
    await peer.close();
  }
});

testEachBackend('campaign: kill -9 of the sender during an SMTP transaction, then send again: no duplicates, the in-flight one is uncertain', async ({ database, url }) => {
  const db = database.db;
  const orgs: OrgSpec[] = [1, 2, 3, 4, 5].map((i) => ({
    name: `Org ${i}`, network: `198.18.${i}.0/24`, contact: i === 3 ? `stall@org${i}.test` : `sec@org${i}.test`,
    hosts: [{ ip: `198.18.${i}.10`, vulnerable: ['CVE-2021-26855'] }],
  }));
  await buildEstate(database, orgs);
  const peer = await startCampaignPeer();
  const home = mkdtempSync(join(tmpdir(), 'tocsin-campaign-'));
  const env = { ...process.env, TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url, TOCSIN_SMTP_URL: peer.url, TOCSIN_MAIL_FROM: 'cert@cert.test', TOCSIN_ACK_SECRET: SECRET.toString() };
  try {
    // `create` prints the id alone on stdout
    const created = await runCli(['campaign', 'create', '--name', 'kill', '--cve', 'CVE-2021-26855'], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^\d+\n$/);
    const id = Number(created.stdout.trim());
    assert.match(created.stderr, /5 message\(s\) queued/);
    assert.equal((await runCli(['campaign', 'send', String(id)], env)).code, 65); // not approved: TOCSIN_CAMPAIGN_STATE
    assert.equal((await runCli(['campaign', 'approve', String(id), '--as', 'lead'], env)).code, 0);
    // One at a time, so the states at the kill are exact (the concurrent sender's kill: campaign-concurrency.test.ts).
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'campaign', 'send', String(id), '--concurrency', '1'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
    // the third organisation's transaction is in flight (its data sent, no reply): kill the sender now
    await Promise.race([peer.stalled, exited.then(() => { throw new Error(`the sender exited before the stall: ${stderr}`); })]);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const before = byOrg((await campaignStatus(db, id)).records);
    assert.deepEqual([1, 2, 3, 4, 5].map((i) => before.get(`Org ${i}`)!.state), ['sent', 'sent', 'sending', 'queued', 'queued']);

    const sender = createSmtpSender({ url: peer.url, from: 'cert@cert.test' });
    try {
      const again = await sendCampaign(db, id, sender, ctxFor());
      assert.deepEqual(again.sweptUncertain, ['Org 3']);
      assert.equal(again.sent, 2);
      assert.equal((await sendCampaign(db, id, sender, ctxFor())).considered, 0);
    } finally {
      await sender.close();
    }
    const after = byOrg((await campaignStatus(db, id)).records);
    assert.deepEqual([1, 2, 3, 4, 5].map((i) => after.get(`Org ${i}`)!.state), ['sent', 'sent', 'uncertain', 'sent', 'sent']);
    const counts = new Map<string, number>();
    for (const m of peer.accepted) for (const r of m.recipients) counts.set(r, (counts.get(r) ?? 0) + 1);
    assert.deepEqual([...counts].sort(), [['sec@org1.test', 1], ['sec@org2.test', 1], ['sec@org4.test', 1], ['sec@org5.test', 1]]);
    assert.equal(peer.bodies, 5); // org 3's body reached the peer once (unanswered) and was never sent again
    const status = await runCli(['campaign', 'status', String(id), '--format', 'jsonl'], env);
    const lines = status.stdout.trim().split('\n').map((l) => JSON.parse(l) as StatusRecord);
    assert.deepEqual(lines.map((l) => [l.org, l.state, l.recipients.length]), [
      ['Org 1', 'sent', 1], ['Org 2', 'sent', 1], ['Org 3', 'uncertain', 1], ['Org 4', 'sent', 1], ['Org 5', 'sent', 1],
    ]);
    for (const l of lines) {
      assert.match(l.ticket, /^\d{8}-\d{8}$/);
      assert.match(l.messageId, /^<.+@cert\.test>$/);
    }
  } finally {
    await peer.close();
    rmSync(home, { recursive: true, force: true });
  }
});

const mta = mtaOrSkip();

/**
 * The messages postfix delivered to addresses of `domain`, by recipient, once `expected` have arrived: the shared
 * Maildir holds every mail test's messages, so each file is read once (helpers/mta.ts reads them all per address).
 */
async function deliveredTo(m: Mta, domain: string, expected: number, timeoutMs = 30_000): Promise<Map<string, Buffer[]>> {
  const seen = new Set<string>();
  const out = new Map<string, Buffer[]>();
  let count = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const sub of ['new', 'cur']) {
      const dir = join(m.maildirRoot, 'all', sub);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        const key = name.split(':')[0]!;
        if (seen.has(key)) continue;
        const raw = await readFile(join(dir, name)).catch(() => null);
        if (raw === null) continue; // moved from new/ to cur/ meanwhile: read next round
        seen.add(key);
        const to = /^Delivered-To:\s*(\S+)\s*$/im.exec(raw.subarray(0, 4096).toString('latin1'))?.[1]?.toLowerCase();
        if (to === undefined || !to.endsWith(`@${domain}`)) continue;
        out.set(to, [...(out.get(to) ?? []), raw]);
        count++;
      }
    }
    if (count >= expected) return out;
    if (Date.now() > deadline) throw new Error(`${count} of ${expected} message(s) for ${domain} delivered within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const MTA_TEST = 'campaign: 20 organisations through the real MTA: each mailbox holds exactly one warning with its own exposures only';
if (mta.mta === null) test(MTA_TEST, { skip: mta.skip }, () => undefined);
else testEachBackend(MTA_TEST, async ({ database }) => {
  const m = mta.mta!;
  const db = database.db;
  const domain = uniqueDomain();
  const orgs: OrgSpec[] = Array.from({ length: 20 }, (_, k) => {
    const i = k + 1;
    return {
      name: i === 7 ? `<script>x</script> Org ${i}` : `Org ${i}`, network: `198.18.${i}.0/24`, contact: `sec-org${i}@${domain}`,
      hosts: Array.from({ length: 1 + (i % 3) }, (_, h) => ({ ip: `198.18.${i}.${10 + h}`, vulnerable: PROXYLOGON, hostname: i === 7 ? 'owa.<img src=x>\u202e.test' : null })),
    };
  });
  await buildEstate(database, orgs);
  const { id, queued } = await createCampaign(db, { name: 'real MTA', group: 'ProxyLogon', createdBy: 'tester', fromAddress: 'cert@cert.test' });
  assert.equal(queued, 20);
  await approveCampaign(db, id, 'lead');
  const sender = createSmtpSender({ url: m.url, from: 'CERT <cert@cert.test>' });
  try {
    const s = await sendCampaign(db, id, sender, ctxFor());
    assert.equal(s.sent, 20);
    assert.equal((await sendCampaign(db, id, sender, ctxFor())).considered, 0);
  } finally {
    await sender.close();
  }
  const status = byOrg((await campaignStatus(db, id)).records);
  const delivered = await deliveredTo(m, domain, 20);
  // nothing arrives twice later either
  await new Promise((r) => setTimeout(r, 500));
  const again = await deliveredTo(m, domain, 20);
  for (const o of orgs) {
    const i = Number(/(\d+)$/.exec(o.name)![1]);
    const got = delivered.get(o.contact!.toLowerCase()) ?? [];
    assert.equal(got.length, 1, o.contact);
    assert.equal(again.get(o.contact!.toLowerCase())?.length, 1, o.contact);
    const p = await simpleParser(got[0]!);
    assert.equal(p.messageId, status.get(o.name)!.messageId);
    assert.ok(p.subject?.startsWith(`[${status.get(o.name)!.ticket}]`), p.subject);
    const seenHosts = new Set([...(p.text ?? '').matchAll(/198\.18\.(\d+)\.(\d+)/g)].map((x) => `${x[1]}.${x[2]}`));
    assert.deepEqual([...seenHosts].sort(), o.hosts.map((h) => h.ip.slice('198.18.'.length)).sort());
    if (i === 7) {
      assert.doesNotMatch(String(p.html), /<script>|<img/);
      assert.match(p.subject ?? '', /<script>x<\/script> Org 7/);
      assert.doesNotMatch(p.text ?? '', /\u202e/);
    }
  }
  assert.equal([...delivered.keys()].length, 20);
});
