/**
 * The demo's warning loop end to end (issue 9 §5 "Done when": patched lab hosts close their findings `patched`,
 * unreachable ones stay open), as a user runs it: `tocsin demo --once` in a fresh TOCSIN_HOME (embedded
 * PostgreSQL from nothing) on a lab of two /24s, so every attribution rule of the demo constituency is used. Then,
 * through the CLI and the files the demo leaves: the patch wave it applied (TOCSIN_HOME/demo/patch-wave/patch-wave.json),
 * the findings, the campaign's status and the local sink's .eml files (exactly one message per organisation).
 * The pure parts (the demo constituency's layout, the wave applied to the lab's estate) are checked first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConstituency, demoConstituencyCsv, DEMO_HOSTING_ASN } from '../src/services/demo-constituency.js';
import { generateEstate, DEFAULT_MIX } from '../lab/estate.js';
import { applyWave } from '../lab/patch-wave.js';
import { kbBuilds } from '../lab/server.js';
import { runCli } from './helpers/independent-estate/cli.js';

test('demo constituency: an ISP /24 with customer /26s inside, an ASN-only and a domain-only organisation, contacts @<org>.test', () => {
  const c = demoConstituency('127.1.0.0', 512);
  const isp = c.organisations.find((o) => o.sector === 'telecom');
  assert.deepEqual(isp?.networks, ['127.1.0.0/24']);
  const inside = c.organisations.filter((o) => o.networks.some((n) => n.startsWith('127.1.0.') && n.endsWith('/26')));
  assert.deepEqual(inside.map((o) => o.sector), ['health', 'government', 'education']);
  const asnOnly = c.organisations.filter((o) => o.networks.length === 0 && o.asns.length > 0 && o.domains.length === 0);
  const domainOnly = c.organisations.filter((o) => o.networks.length === 0 && o.asns.length === 0 && o.domains.length > 0);
  assert.equal(asnOnly.length, 1);
  assert.equal(domainOnly.length, 1);
  assert.deepEqual(c.prefixes, [`127.1.1.128/26 AS${DEMO_HOSTING_ASN}`]);
  for (const o of c.organisations) assert.match(o.contact, /^security@[a-z0-9-]+\.test$/, o.name);
  assert.equal(new Set(c.organisations.map((o) => o.name)).size, c.organisations.length, 'names are unique');
  assert.ok(new Set(c.organisations.map((o) => o.sector)).size >= 6);
  // A lab of one /24 has no room for the ASN-only and domain-only organisations: they are left out, not empty.
  assert.equal(demoConstituency('127.1.0.0', 96).organisations.length, 4);
  // The CSV `tocsin constituency import` reads: a header and one row per organisation.
  assert.equal(demoConstituencyCsv(c).trim().split('\n').length, c.organisations.length + 1);
});

test('patch wave: upgraded Exchange hosts run the newest build of their edition, dark hosts become silent, the rest is untouched', () => {
  const builds = kbBuilds();
  const before = generateEstate({ hosts: 128, base: '127.1.0.0', seed: 3, mix: DEFAULT_MIX }, builds);
  const exchange = before.filter((h) => h.kind === 'exchange');
  const up = exchange.slice(0, 6).map((h) => h.ip);
  const dark = exchange.slice(6, 8).map((h) => h.ip);
  const after = applyWave(before, { upgraded: up, unreachable: dark }, builds);
  assert.equal(after.length, before.length);
  for (const h of after) {
    const was = before[h.index];
    assert.ok(was !== undefined);
    if (up.includes(h.ip)) {
      assert.equal(h.kind, 'exchange');
      assert.equal(h.edition?.slice(0, 18), was.edition?.slice(0, 18), `${h.ip} keeps its edition family`);
      assert.ok(h.build !== null && was.build !== null && h.build.localeCompare(was.build, undefined, { numeric: true }) >= 0, `${h.ip}: ${String(was.build)} -> ${String(h.build)}`);
      assert.equal(h.expected.buildPrecision, was.expected.buildPrecision, 'what the scanner can see is unchanged');
    } else if (dark.includes(h.ip)) {
      assert.equal(h.kind, 'tarpit');
      assert.equal(h.outcome.https, 'timeout');
    } else {
      assert.equal(h, was);
    }
  }
});

interface FindingLine {
  readonly ip: string;
  readonly cve: string;
  readonly state: string;
  readonly closeReason: string | null;
}

interface StatusLine {
  readonly org: string;
  readonly recipients: readonly string[];
  readonly state: string;
}

function emlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.eml')).map((f) => join(dir, f));
}

test('tocsin demo --once: campaign to the local sink, patch wave, rescan: patched hosts closed `patched`, unreachable still open, one message per organisation', { timeout: 600_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-demo-loop-'));
  // The embedded server runs as an unprivileged user when we are root: it must reach the data directory.
  chmodSync(home, 0o755);
  const env: Record<string, string> = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: '', DATABASE_URL: '' };
  try {
    const demo = await runCli(['demo', '--once', '--hosts', '320', '--seed', '7', '--no-progress'], env, 540_000);
    const stdout = demo.stdout.toString('utf8');
    const stderr = demo.stderr.toString('utf8');
    assert.equal(demo.code, 0, `exit ${String(demo.code)} ${String(demo.signal)}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    // The picture per organisation and per sector, with the nested customer and the ISP both present.
    assert.match(stdout, /^Tocsin report by organisation/m);
    assert.match(stdout, /^Tocsin report by sector/m);
    assert.match(stdout, /^Loopback Telecom +telecom /m);
    assert.match(stdout, /^St\. Loopback Hospital +health /m);
    assert.match(stdout, /^Burn-down/m);
    assert.match(stderr, /the \.eml files are under /);

    const wave = JSON.parse(readFileSync(join(home, 'demo', 'patch-wave', 'patch-wave.json'), 'utf8')) as { campaign: number; upgraded: string[]; unreachable: string[] };
    assert.ok(wave.upgraded.length > 10 && wave.unreachable.length > 0, JSON.stringify(wave));

    const list = await runCli(['findings', '--state', 'all', '--format', 'jsonl'], env, 120_000);
    assert.equal(list.code, 0, list.stderr.toString('utf8'));
    const findings = list.stdout.toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as FindingLine);
    const proxyLogon = new Set(['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065']);
    const of = (ips: readonly string[]): FindingLine[] => findings.filter((f) => ips.includes(f.ip) && proxyLogon.has(f.cve));
    const patched = of(wave.upgraded);
    assert.ok(patched.length >= wave.upgraded.length, 'every upgraded host had at least one ProxyLogon finding');
    assert.deepEqual(patched.filter((f) => !(f.state === 'closed' && f.closeReason === 'patched')), [], 'upgraded hosts: closed, reason patched');
    const dark = of(wave.unreachable);
    assert.ok(dark.length >= wave.unreachable.length);
    assert.deepEqual(dark.filter((f) => f.state !== 'open'), [], 'unreachable is not fixed: still open');

    // Exactly one message per organisation of the campaign, each to that organisation's own contact.
    const status = await runCli(['campaign', 'status', String(wave.campaign), '--format', 'jsonl'], env, 120_000);
    assert.equal(status.code, 0, status.stderr.toString('utf8'));
    const orgs = status.stdout.toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as StatusLine);
    assert.ok(orgs.length >= 5, `organisations warned: ${orgs.length}`);
    assert.equal(new Set(orgs.map((o) => o.org)).size, orgs.length);
    assert.deepEqual(orgs.filter((o) => o.state !== 'sent'), []);
    const mails = emlFiles(join(home, 'mail'));
    assert.equal(mails.length, orgs.length, 'one .eml per organisation');
    const envelopeTo = mails.map((f) => /^X-Tocsin-Envelope-To: (.*)\r$/m.exec(readFileSync(f, 'utf8'))?.[1] ?? '').sort();
    assert.deepEqual(envelopeTo, orgs.map((o) => o.recipients.join(', ')).sort());
  } finally {
    await runCli(['db', 'stop'], env, 60_000);
    rmSync(home, { recursive: true, force: true });
  }
});
