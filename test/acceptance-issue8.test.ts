/**
 * Issue 8, "Done when", end to end through the CLI as an analyst runs it (both backends; the embedded one is the
 * quick start's): a constituency with nested networks (Harbour Clinic's /26 inside Nordnet ISP's /24), an
 * ASN-only organisation (Prairie Hosting) and a domain-only one (Riverbank Council); Shadowserver scan_exchange
 * reports in the current column layout (BOM, CRLF), another with the columns in another order, a duplicate
 * delivery of the first, a scan6_exchange report, rows with a bad IP and bad ports, IPv6 rows and web-shell rows.
 * Then: every distinct exposure is listed once by `tocsin exposures --format jsonl` with the right organisation
 * and rule, the bad rows are in `tocsin feeds quarantine` with their raw line, nothing else is lost, and
 * `tocsin whois` explains each address. Fixtures: test/fixtures/acceptance-issue8/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testEachBackend } from './helpers/db.js';
import { ROOT, runCli } from './helpers/independent-estate/cli.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'acceptance-issue8');
const CURRENT = join(FIXTURES, '2024-06-03-scan_exchange-acceptance.csv');
const REDELIVERED = join(FIXTURES, '2024-06-03-scan_exchange-acceptance-redelivered.csv');
const REORDERED = join(FIXTURES, '2024-06-05-scan_exchange-reordered.csv');
const V6 = join(FIXTURES, '2024-06-05-scan6_exchange-acceptance.csv');

interface Expected {
  readonly org: string | null;
  readonly rule: 'network' | 'asn' | 'domain' | null;
  readonly compromised: boolean;
  /** What whois must name as the matching record (network, AS number or domain). */
  readonly matched: RegExp | null;
}

/** Every distinct (ip, port) of the four reports, with its owner and why (the fixtures' ground truth). */
const EXPECTED: ReadonlyMap<string, Expected> = new Map([
  ['192.0.2.33:443', { org: 'Riverbank Council', rule: 'domain', compromised: false, matched: /domain riverbank\.test \(feed mail\.riverbank\.test\)/ }],
  ['198.51.100.10:443', { org: 'Nordnet ISP', rule: 'network', compromised: false, matched: /network 198\.51\.100\.0\/24/ }],
  ['198.51.100.10:8443', { org: 'Nordnet ISP', rule: 'network', compromised: false, matched: /network 198\.51\.100\.0\/24/ }],
  ['198.51.100.70:443', { org: 'Harbour Clinic', rule: 'network', compromised: false, matched: /network 198\.51\.100\.64\/26/ }],
  ['198.51.100.71:443', { org: 'Harbour Clinic', rule: 'network', compromised: true, matched: /network 198\.51\.100\.64\/26/ }],
  ['198.51.100.80:443', { org: 'Harbour Clinic', rule: 'network', compromised: false, matched: /network 198\.51\.100\.64\/26/ }],
  ['203.0.113.20:443', { org: 'Prairie Hosting', rule: 'asn', compromised: false, matched: /AS64511/ }],
  ['203.0.113.21:443', { org: 'Prairie Hosting', rule: 'asn', compromised: false, matched: /AS64511/ }],
  ['203.0.113.99:443', { org: null, rule: null, compromised: false, matched: null }],
  ['2001:db8:100::25:443', { org: 'Nordnet ISP', rule: 'network', compromised: false, matched: /network 2001:db8:100::\/48/ }],
  ['2001:db8:100::26:443', { org: 'Nordnet ISP', rule: 'network', compromised: true, matched: /network 2001:db8:100::\/48/ }],
  ['2001:db8:200::5:443', { org: 'Prairie Hosting', rule: 'asn', compromised: true, matched: /AS64511/ }],
  ['2001:db8:200::6:443', { org: 'Prairie Hosting', rule: 'asn', compromised: false, matched: /AS64511/ }],
]);

interface ExposureLine {
  readonly ip: string;
  readonly port: number | null;
  readonly sources: readonly string[];
  readonly org: string | null;
  readonly rule: string | null;
  readonly compromised: boolean;
  readonly reportedCves: readonly string[];
  readonly buildPrecision: string | null;
  readonly firstSeen: string;
  readonly lastSeen: string;
}

interface QuarantineLine {
  readonly file: string;
  readonly line: number;
  readonly raw: string;
  readonly error: string;
}

/** Line `n` (1-based) of a fixture as the file holds it, without its line end (and without the BOM). */
function fixtureLine(file: string, n: number): string {
  const lines = readFileSync(file, 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/);
  return lines[n - 1] ?? '';
}

testEachBackend('issue 8 acceptance: Shadowserver reports + nested constituency -> each exposure once, right owner and rule; bad rows quarantined raw; whois explains', async ({ url }) => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-acc8-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  const cli = async (args: readonly string[]): Promise<{ stdout: string; stderr: string }> => {
    const r = await runCli(args, env, 120_000);
    const stdout = r.stdout.toString('utf8');
    const stderr = r.stderr.toString('utf8');
    assert.equal(r.code, 0, `tocsin ${args.join(' ')}: exit ${String(r.code)} ${String(r.signal)}\n${stderr}`);
    return { stdout, stderr };
  };
  try {
    const imp = await cli(['constituency', 'import', join(FIXTURES, 'constituency.csv')]);
    assert.match(imp.stdout, /4 rows read, 4 imported, 0 unchanged, 0 set aside, 0 problem/);

    // The duplicate delivery comes right after the original, the reordered report after both.
    const feeds = await cli(['feeds', 'import', CURRENT, REDELIVERED, REORDERED, V6]);
    assert.match(feeds.stderr, /4 file\(s\): 27 row\(s\) read, 14 imported, 8 duplicate, 3 quarantined/);
    assert.match(feeds.stdout, /^same .*redelivered\.csv .*nothing stored/m);

    // Every distinct exposure exactly once, with its organisation and rule.
    const listed = (await cli(['exposures', '--format', 'jsonl'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as ExposureLine);
    const keys = listed.map((r) => `${r.ip}:${String(r.port)}`);
    assert.equal(new Set(keys).size, keys.length, `an exposure listed twice: ${keys.join(' ')}`);
    assert.deepEqual([...keys].sort(), [...EXPECTED.keys()].sort());
    for (const r of listed) {
      const key = `${r.ip}:${String(r.port)}`;
      const want = EXPECTED.get(key);
      assert.ok(want !== undefined, key);
      assert.equal(r.org, want.org, `${key}: organisation`);
      assert.equal(r.rule, want.rule, `${key}: rule`);
      assert.equal(r.compromised, want.compromised, `${key}: compromised (web-shell tag)`);
      assert.deepEqual(r.sources, ['shadowserver'], key);
      assert.equal(r.buildPrecision, 'cu', `${key}: a feed's version is a CU-precision build`);
    }
    // The address seen in both the first report and the reordered one: one record spanning both deliveries,
    // with both reports' CVE tags kept.
    const twice = listed.find((r) => r.ip === '198.51.100.10' && r.port === 443);
    assert.equal(twice?.firstSeen, '2024-06-03T01:00:01.000Z');
    assert.equal(twice?.lastSeen, '2024-06-05T02:00:01.000Z');
    assert.ok(twice?.reportedCves.includes('CVE-2021-26855'));

    // The three bad rows, each with its file, line and raw line as delivered; the duplicate delivery adds none.
    const quarantined = (await cli(['feeds', 'quarantine', '--format', 'jsonl'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as QuarantineLine);
    const where = quarantined.map((q) => `${q.file}:${q.line}`).sort();
    assert.deepEqual(where, [`${CURRENT}:7`, `${CURRENT}:8`, `${REORDERED}:6`].sort());
    for (const q of quarantined) assert.equal(q.raw, fixtureLine(q.file, q.line), `${q.file}:${q.line} raw line`);
    assert.match(quarantined.find((q) => q.line === 7)?.error ?? '', /IP address.*198\.51\.100\.300/);
    assert.match(quarantined.find((q) => q.line === 8)?.error ?? '', /port.*99999/);
    assert.match(quarantined.find((q) => q.file === REORDERED)?.error ?? '', /port.*https/);

    // Nothing else lost: every data row of the reports is either an exposure or in the quarantine
    // (the redelivered file holds the same rows as the first).
    const dataRows = [CURRENT, REORDERED, V6].reduce((n, f) => n + readFileSync(f, 'utf8').trim().split(/\r?\n/).length - 1, 0);
    // Rows minus quarantined minus the one repeated (ip, port) of the reordered report.
    assert.equal(dataRows - quarantined.length - 1, listed.length);

    // whois explains each address: the organisation, the record that matched, and why the others lost.
    for (const [key, want] of EXPECTED) {
      const ip = key.slice(0, key.lastIndexOf(':'));
      const text = (await cli(['whois', ip])).stdout;
      if (want.org === null) {
        assert.match(text, /^organisation none \(unattributed/m, key);
        continue;
      }
      assert.match(text, new RegExp(`^organisation ${want.org} \\(id \\d+\\)`, 'm'), key);
      assert.match(text, new RegExp(`^rule +${want.rule ?? ''}, confidence`, 'm'), key);
      assert.ok(want.matched !== null && want.matched.test(text.split('\n').find((l) => l.startsWith('matched')) ?? ''), `${key}: matched line\n${text}`);
      assert.match(text, /^contacts +\S+@\S+\.test/m, `${key}: a contact to warn`);
    }
    // The nested network: the customer's /26 wins over the ISP's /24 and the ISP's ASN, and whois says why.
    const nested = (await cli(['whois', '198.51.100.70'])).stdout;
    assert.match(nested, /Nordnet ISP by network 198\.51\.100\.0\/24.*lost \(less-specific\)/);
    assert.match(nested, /Nordnet ISP by AS64500.*lost \(weaker-rule\)/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
