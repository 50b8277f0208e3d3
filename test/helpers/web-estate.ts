/**
 * The one data set behind the browser, hostile-content and tenant-isolation suites (issue 10 §7), built through the
 * REAL services on a fresh database: a constituency import (three organisations, two of them with script/HTML
 * payloads as names), a finished scan stored by the scan store (hostile hostnames, and the lab's hostile `Server:`
 * banner `<script>alert(1)</script>` as evidence, see lab/server.test.ts 'hostile header values'), a Shadowserver
 * report through the feed import (a hostile hostname and a web-shell tag), the findings fold (which refreshes the
 * attributions), a ProxyLogon campaign (with a hostile name) approved and sent through the built-in local SMTP
 * sink, one stage-0 incident report per organisation (filed through the incident service as its portal user would),
 * and accounts: an administrator, an analyst and one organisation user for each of two organisations.
 *
 * Every organisation's identifying values (addresses, name, contacts, hostnames, incident summary and reporter) are
 * listed in `orgs` and `secretsOf`, so the
 * tenant suite can assert that none of another organisation's values appears in an answer.
 *
 * Scan records are stored directly (as test/helpers/exposures-estate.ts does) rather than from a lab scan: the
 * pages under test read stored rows, and a lab scan would add a minute of CI time without changing what is shown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Evidence } from '../../src/core/contracts/evidence.js';
import type { ScanRecord } from '../../src/core/contracts/scan-record.js';
import { csvDocument, DATA_FILE_CSV } from '../../src/core/csv.js';
import type { Database } from '../../src/platform/db/connect.js';
import { createConstituencyStore } from '../../src/platform/db/constituency-store.js';
import { createScanStore } from '../../src/platform/db/scan-store.js';
import { createSmtpSender, startLocalSink } from '../../src/platform/mail/index.js';
import { productRuntimes } from '../../src/products/registry.js';
import type { AttemptResult } from '../../src/scan/ports.js';
import { addUser } from '../../src/services/accounts.js';
import { approveCampaign, createCampaign, sendCampaign, type RenderContext } from '../../src/services/campaigns.js';
import { importConstituency } from '../../src/services/constituency.js';
import { foldFindings } from '../../src/services/findings.js';
import { reportIncident } from '../../src/services/incidents.js';
import { importFeeds } from '../../src/services/ingest.js';

/** Payloads that would run if any page put data into markup unescaped; each sets a different window.__xss value. */
export const HOSTILE = {
  script: '<script>window.__xss=1</script>',
  img: '"><img src=x onerror="window.__xss=2">',
  svg: '\'><svg onload=window.__xss=3>',
  /** The lab's hostile Server header (lab/host-factories.ts 'hostile-headers', variant 'script'): a dialog if run. */
  alert: '<script>alert(1)</script>',
  attr: '" autofocus onfocus="window.__xss=4',
  js: 'javascript:window.__xss=5',
} as const;

export const PASSWORD = 'correct horse battery staple';
export const PROXYLOGON = ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'];

export interface EstateHost {
  readonly ip: string;
  readonly hostname: string | null;
  readonly vulnerable: readonly string[];
  /** The Server banner stored as evidence (hostile for some hosts). */
  readonly banner: string;
}

export interface EstateOrg {
  readonly key: 'alpha' | 'beta' | 'gamma';
  readonly name: string;
  readonly sector: string;
  readonly network: string;
  readonly contacts: readonly string[];
  readonly hosts: readonly EstateHost[];
  /** Hostnames only a feed row names (not in `hosts`). */
  readonly feedHostnames: readonly string[];
  /** The stage-0 incident report it filed: its summary (the queue's title) and reporter. */
  readonly incident: { readonly summary: string; readonly reporter: string; readonly email: string };
  /** Set once the estate is built. */
  id: number;
  incidentId: number;
}

export interface Account {
  readonly email: string;
  readonly password: string;
  readonly role: 'admin' | 'analyst' | 'org';
  readonly org: EstateOrg | null;
}

export interface WebEstate {
  readonly orgs: Readonly<Record<EstateOrg['key'], EstateOrg>>;
  /** An Exchange server no organisation owns (the review queue). */
  readonly unattributed: EstateHost;
  readonly accounts: { readonly admin: Account; readonly analyst: Account; readonly alpha: Account; readonly beta: Account };
  readonly campaign: { readonly id: number; readonly name: string; readonly sent: number };
  /** Every value that belongs to one organisation and must never reach another's user. */
  secretsOf(org: EstateOrg): string[];
}

function orgsOf(): Record<EstateOrg['key'], EstateOrg> {
  return {
    alpha: {
      key: 'alpha', name: 'Alpha Hospital', sector: 'health', network: '198.18.10.0/24', contacts: ['security@alpha-hospital.test'],
      hosts: [
        { ip: '198.18.10.5', hostname: 'owa.alpha-hospital.test', vulnerable: PROXYLOGON, banner: 'Microsoft-IIS/10.0' },
        { ip: '198.18.10.6', hostname: `mail.alpha-hospital.test${HOSTILE.svg}`, vulnerable: ['CVE-2021-26855'], banner: HOSTILE.alert },
      ],
      feedHostnames: [`legacy.alpha-hospital.test${HOSTILE.img}`],
      incident: { summary: `Alpha: ransom note on the OWA server ${HOSTILE.script}`, reporter: 'Anna Alpha-Duty', email: 'duty@alpha-hospital.test' },
      id: 0, incidentId: 0,
    },
    beta: {
      key: 'beta', name: `Beta Energy ${HOSTILE.img}`, sector: 'energy', network: '198.18.20.0/24', contacts: ['cert@beta-energy.test'],
      hosts: [
        { ip: '198.18.20.7', hostname: `owa.beta-energy.test${HOSTILE.script}`, vulnerable: PROXYLOGON, banner: HOSTILE.alert },
        { ip: '198.18.20.8', hostname: 'exch2.beta-energy.test', vulnerable: ['CVE-2021-26855', 'CVE-2021-27065'], banner: `IIS ${HOSTILE.attr}` },
      ],
      feedHostnames: [],
      incident: { summary: `Beta: web shell found in aspnet_client ${HOSTILE.img}`, reporter: 'Bert Beta-Oncall', email: 'oncall@beta-energy.test' },
      id: 0, incidentId: 0,
    },
    gamma: {
      key: 'gamma', name: `${HOSTILE.script} Gamma Water`, sector: 'water', network: '198.18.30.0/24', contacts: ['soc@gamma-water.test'],
      hosts: [{ ip: '198.18.30.9', hostname: HOSTILE.js, vulnerable: PROXYLOGON, banner: HOSTILE.svg }],
      feedHostnames: [],
      incident: { summary: `Gamma: mailbox exports by an unknown account ${HOSTILE.attr}`, reporter: 'Greta Gamma-SOC', email: 'ir@gamma-water.test' },
      id: 0, incidentId: 0,
    },
  };
}

function answered(h: EstateHost, at: string): AttemptResult {
  const evidence: Evidence[] = [{ detector: 'exchange.owa-version', probe: 'owa', url: `https://${h.ip}/owa/`, where: 'header', name: 'server', excerpt: h.banner }];
  const record: ScanRecord = {
    ip: h.ip, port: 443, hostname: h.hostname, tls: true, product: 'ms-exchange', edition: 'Exchange Server 2016', build: '15.1.2176.2',
    buildPrecision: 'exact', cu: 'CU19', su: null, vulnerable: [...h.vulnerable], indeterminate: [], evidence, scannedAt: at, status: 200, notes: [],
  };
  return { ip: h.ip, port: 443, hostname: h.hostname, outcome: 'answered', detail: null, record, facts: [], detectorRevisions: {}, tlsCert: null, attemptedAt: at };
}

const q = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** Builds the estate on a fresh, migrated database (the local SMTP sink writes to a scratch directory, removed after). */
export async function buildWebEstate(database: Database): Promise<WebEstate> {
  const db = database.db;
  const orgs = orgsOf();
  const all = Object.values(orgs);

  const csv = csvDocument(['organisation', 'sector', 'networks', 'contact'], all.map((o) => [o.name, o.sector, o.network, o.contacts.join(' ')]), DATA_FILE_CSV);
  const imported = await importConstituency(createConstituencyStore(db), { files: [{ name: 'orgs.csv', bytes: Buffer.from(csv) }], format: 'auto', who: 'web-estate' });
  assert.equal(imported.files[0]?.imported, all.length, JSON.stringify(imported.files));
  for (const o of all) o.id = Number((await db.selectFrom('organisations').select('id').where('name', '=', o.name).executeTakeFirstOrThrow()).id);

  const unattributed: EstateHost = { ip: '198.19.99.1', hostname: `stray.example${HOSTILE.img}`, vulnerable: ['CVE-2021-26855'], banner: HOSTILE.alert };
  const scans = createScanStore(db, { kbRevision: 'test' });
  const scan = await scans.createScan({ targets: ['198.18.0.0/15'], ports: [443], options: {} });
  const t0 = Date.now() - 3_600_000;
  await scans.recordBatch(scan.id, [...all.flatMap((o) => o.hosts), unattributed].map((h, i) => answered(h, new Date(t0 + i * 1000).toISOString())));
  await scans.finishScan(scan.id, 'finished');

  // A Shadowserver report: a hostname only the feed knows, and a web shell on Alpha's second host.
  const scratch = mkdtempSync(join(tmpdir(), 'tocsin-web-estate-'));
  try {
    const feed = join(scratch, '2026-03-01-scan_exchange-web.csv');
    writeFileSync(feed, [
      '"timestamp","ip","protocol","port","hostname","tag","asn","version"',
      `"2026-03-01 08:00:00","198.18.10.6","tcp",443,${q(orgs.alpha.feedHostnames[0] ?? '')},"exchange;webshell;cve-2021-26855",64496,"15.1.2176"`,
      '',
    ].join('\n'));
    const [r] = await importFeeds([feed], { db, products: productRuntimes() });
    assert.equal(r?.imported, 1, JSON.stringify(r));

    await foldFindings(db, { who: 'web-estate' });
    const campaignName = `ProxyLogon ${HOSTILE.svg} March`;
    const created = await createCampaign(db, { name: campaignName, group: 'ProxyLogon', createdBy: 'web-estate', fromAddress: 'cert@cert.test' });
    assert.equal(created.queued, 3, JSON.stringify(created));
    await approveCampaign(db, created.id, 'web-estate');
    const sink = await startLocalSink({ home: scratch });
    const sender = createSmtpSender({ url: sink.url, from: 'CERT <cert@cert.test>' });
    let sent = 0;
    try {
      const rc: RenderContext = { fromAddress: 'cert@cert.test', contactUrl: 'https://cert.test/scanning', ackSecret: Buffer.alloc(32, 7), ackUrlBase: 'https://cert.test/ack/' };
      sent = (await sendCampaign(db, created.id, sender, rc)).sent;
    } finally {
      await sender.close();
      await sink.close();
    }
    assert.equal(sent, 3);

    // Each organisation files a stage-0 report through the incident service, as its portal user would.
    for (const o of all) {
      o.incidentId = (await reportIncident(db, { who: `it@${o.key}.test`, scope: { kind: 'org', orgId: o.id, org: o.name } }, {
        reporter: { name: o.incident.reporter, role: 'IT lead', phone: '+49 30 1234567', email: o.incident.email },
        summary: o.incident.summary, types: ['web-shell'], cves: ['CVE-2021-26855'], detectedAt: '2026-03-01T09:00:00+01:00', ongoing: true,
      }, { via: 'portal' })).id;
    }

    const account = (email: string, role: Account['role'], org: EstateOrg | null): Account => ({ email, password: PASSWORD, role, org });
    const accounts = {
      admin: account('admin@cert.test', 'admin', null),
      analyst: account('analyst@cert.test', 'analyst', null),
      alpha: account('it@alpha-hospital.test', 'org', orgs.alpha),
      beta: account('it@beta-energy.test', 'org', orgs.beta),
    };
    for (const a of Object.values(accounts)) await addUser(db, { email: a.email, role: a.role, password: a.password, ...(a.org === null ? {} : { org: a.org.name }) });

    return {
      orgs, unattributed, accounts,
      campaign: { id: created.id, name: campaignName, sent },
      secretsOf: (o) => [
        o.name, ...o.contacts, o.incident.summary, o.incident.reporter, o.incident.email, ...o.hosts.map((h) => h.ip), ...o.hosts.flatMap((h) => (h.hostname === null ? [] : [h.hostname])), ...o.feedHostnames,
        ...Object.values(accounts).filter((a) => a.org === o).map((a) => a.email),
      ],
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
