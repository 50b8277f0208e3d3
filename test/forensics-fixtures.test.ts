/**
 * The kit tried as a new user would: an independent Exchange install tree and log set
 * (test/fixtures/forensics/server1) with planted ProxyLogon, ProxyShell, ProxyNotShell/OWASSRF,
 * CVE-2020-0688, ProxyToken and web-shell traces, and the near-misses that must stay silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { analyze } from '../src/forensics/analyze.js';
import { runForensics } from '../src/forensics/run.js';
import type { FindingRecord } from '../src/forensics/types.js';
import { KIT_VERSION, rulesRevision } from '../src/forensics/version.js';

const TREE = fileURLToPath(new URL('./fixtures/forensics/server1', import.meta.url));
const V15 = 'Program Files/Microsoft/Exchange Server/V15';
const ECP = `${V15}/Logging/HttpProxy/Ecp/HttpProxy_2021030306-1.LOG`;
const AUTOD = `${V15}/Logging/HttpProxy/Autodiscover/HttpProxy_2021081012-1.LOG`;
const OWA = `${V15}/Logging/HttpProxy/Owa/HttpProxy_2022122010-1.LOG`;
const ECPSRV = `${V15}/Logging/ECP/Server/ECPServer2021030306-1.LOG`;
const OAB = `${V15}/Logging/OABGeneratorLog/OABGeneratorLog_20210303-1.LOG`;
const IIS = 'inetpub/logs/LogFiles/W3SVC1/u_ex210303.log';
const AUTH = `${V15}/FrontEnd/HttpProxy/owa/auth`;

/** Every planted trace: [check, file relative to the tree, line (null for files), CVE]. */
const PLANTED: readonly (readonly [string, string, number | null, string | null])[] = [
  ['proxylogon-ssrf-anchor', ECP, 7, 'CVE-2021-26855'],
  ['proxylogon-static-post', ECP, 7, 'CVE-2021-26855'],
  ['proxylogon-ssrf-anchor', ECP, 8, 'CVE-2021-26855'],
  ['proxylogon-static-post', ECP, 8, 'CVE-2021-26855'],
  ['proxylogon-oab-reset', ECP, 8, 'CVE-2021-27065,CVE-2021-26855'],
  ['proxylogon-ssrf-anchor', ECP, 13, 'CVE-2021-26855'],
  ['proxylogon-ssrf-autodiscover', ECP, 15, 'CVE-2021-26855'],
  ['proxyshell-ssrf', AUTOD, 8, 'CVE-2021-34473'],
  ['proxyshell-powershell', AUTOD, 9, 'CVE-2021-34473,CVE-2021-34523'],
  ['exchange-ssrf-attempt', AUTOD, 10, 'CVE-2021-34473,CVE-2022-41040,CVE-2022-41080'],
  ['proxynotshell-powershell', AUTOD, 11, 'CVE-2022-41040,CVE-2022-41082'],
  ['owassrf-powershell', OWA, 8, 'CVE-2022-41080,CVE-2022-41082'],
  ['proxylogon-vdir-script', ECPSRV, 7, 'CVE-2021-27065'],
  ['proxylogon-oab-download-outside', OAB, 3, 'CVE-2021-26858'],
  ['proxylogon-oab-download-outside', OAB, 4, 'CVE-2021-26858'],
  ['webshell-request', IIS, 8, null],
  ['proxylogon-static-post', IIS, 9, 'CVE-2021-26855'],
  ['cve-2020-0688-viewstate', IIS, 10, 'CVE-2020-0688'],
  ['proxytoken-inbox-rule', IIS, 11, 'CVE-2021-33766'],
  ['webshell-request', IIS, 12, null],
  ['webshell-probe', IIS, 13, null],
  ['proxylogon-static-post', IIS, 18, 'CVE-2021-26855'],
  ['proxylogon-um-invalidcast', 'exports/Application-Exchange.xml', 3, 'CVE-2021-26857'],
  ['proxylogon-um-invalidcast', 'exports/Application-Exchange.xml', 4, 'CVE-2021-26857'],
  ['proxyshell-role-assignment', 'exports/MSExchange-Management.csv', 2, 'CVE-2021-31207'],
  ['proxyshell-mailbox-export', 'exports/MSExchange-Management.csv', 3, 'CVE-2021-34473,CVE-2021-34523,CVE-2021-31207'],
  ['webshell-file-auth-folder', `${AUTH}/RedirSuiteServerProxy.aspx`, null, null],
  ['webshell-content-chopper', `${AUTH}/RedirSuiteServerProxy.aspx`, null, null],
  ['webshell-file-auth-subfolder', `${AUTH}/Current/scripts/premium/fexppw.aspx`, null, null],
  ['webshell-content-process', `${AUTH}/Current/scripts/premium/fexppw.aspx`, null, null],
  ['webshell-content-tunnel', `${V15}/ClientAccess/Owa/tunnel.aspx`, null, null],
  ['webshell-file-aspnet-client', 'inetpub/wwwroot/aspnet_client/system_web/discover.aspx', null, null],
  ['webshell-content-chopper', 'inetpub/wwwroot/aspnet_client/system_web/discover.aspx', null, null],
];

/** Near-misses that must stay silent: [file, line or null for the whole file, why]. */
const NEAR_MISSES: readonly (readonly [string, number | null, string])[] = [
  [ECP, 9, 'ServerInfo~localhost canary of a scanner'],
  [ECP, 10, 'autodiscover-only ServerInfo row without the X-BEResource cookie'],
  [ECP, 11, 'ServerInfo~ without a path (normal routing), quotes and commas in the user agent'],
  [ECP, 14, 'scanner fetching the exporttool manifest'],
  [AUTOD, 7, 'autodiscover.json/v1.0/user@domain?Protocol=EWS of a normal client'],
  [OWA, 6, "Microsoft's logon.aspx"],
  [ECPSRV, 6, 'benign Set-OwaVirtualDirectory change'],
  [OAB, 2, 'OAB temporary file inside the OAB folder'],
  [IIS, 6, 'scanner fetching the exporttool manifest'],
  [IIS, 7, "Microsoft's RedirSuiteServiceProxy.aspx"],
  ['exports/Application-Exchange.xml', 1, 'UM error without InvalidCastException'],
  ['exports/Application-Exchange.xml', 2, 'InvalidCastException from another source'],
  ['exports/MSExchange-Management.csv', 5, 'PST export to a file server'],
  [`${AUTH}/logon.aspx`, null, "Microsoft's own .aspx"],
  [`${AUTH}/RedirSuiteServiceProxy.aspx`, null, "Microsoft's own .aspx (look-alike of the shell)"],
  [`${V15}/FrontEnd/HttpProxy/ecp/auth/TimeoutLogout.aspx`, null, "Microsoft's own .aspx"],
  [`${V15}/ClientAccess/ecp/default.aspx`, null, 'benign script mentioning Request.QueryString'],
];

/** The records of JSONL output; the first line is the `meta` object (version, rules revision, verdict). */
function records(out: string): FindingRecord[] {
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok('meta' in lines[0]!, 'the first JSONL line is the meta object');
  return lines.slice(1) as unknown as FindingRecord[];
}

function rel(f: FindingRecord): string {
  return f.file.slice(TREE.length + 1).replace(/\\/g, '/');
}

test('every planted trace is reported with its file, line and CVE, and nothing else', async () => {
  const r = await analyze({ paths: [TREE] });
  const got = r.findings.map((f) => [f.check, rel(f), f.line, f.cve] as const);
  const key = (x: readonly unknown[]): string => JSON.stringify(x);
  assert.deepEqual(new Set(got.map(key)), new Set(PLANTED.map(key)));
  assert.equal(got.length, PLANTED.length, 'no duplicates');
  assert.equal(r.verdict, 'indicators-found');
  for (const [file, line, why] of NEAR_MISSES) {
    assert.ok(!r.findings.some((f) => rel(f) === file && (line === null || f.line === line)), `near-miss reported: ${why}`);
  }
  // Client IPs and times come from the right columns.
  const anchor = r.findings.find((f) => f.check === 'proxylogon-ssrf-anchor' && f.line === 7)!;
  assert.equal(anchor.clientIp, '203.0.113.50');
  assert.equal(anchor.time, '2021-03-03T06:49:42.162Z');
  assert.match(anchor.evidence, /RoutingHint=X-BEResource-Cookie/);
  const iis18 = r.findings.find((f) => rel(f) === IIS && f.line === 18)!;
  assert.equal(iis18.clientIp, '203.0.113.50', 'the second #Fields block of the IIS log is honoured');
  const mgmt = r.findings.find((f) => f.check === 'proxyshell-mailbox-export')!;
  assert.equal(mgmt.time, '2021-08-10T12:21:40.000Z');
});

test('the torn line is reported with file:line, and coverage lists days and first/last timestamps per folder', async () => {
  const r = await analyze({ paths: [TREE] });
  assert.deepEqual(
    r.notices.map((n) => [n.file.slice(TREE.length + 1).replace(/\\/g, '/'), n.line]),
    [[ECP, 12]],
  );
  const ecp = r.coverage.find((c) => c.folder.replace(/\\/g, '/').endsWith('HttpProxy/Ecp'))!;
  assert.equal(ecp.first, '2021-03-03T06:00:01.101Z');
  assert.equal(ecp.last, '2021-03-03T07:08:00.000Z');
  assert.deepEqual(ecp.days, ['2021-03-03']);
  assert.equal(ecp.family, 'HttpProxy/Ecp');
  // One day of logs does not cover ProxyLogon's window: the 31 other days are listed as missing.
  const pl = r.campaigns.find((c) => c.campaign === 'ProxyLogon')!;
  assert.equal(pl.status, 'insufficient');
  assert.equal(pl.missingDays, 31);
  assert.deepEqual(pl.missing, [{ from: '2021-02-28', to: '2021-03-02' }, { from: '2021-03-04', to: '2021-03-31' }]);
  assert.equal(r.stats.logFiles, 9);
});

test('runForensics: exit 1, text summary with the timeline; --since drops earlier records', async () => {
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false } };
  assert.equal(await runForensics({ paths: [TREE] }, io), 1);
  assert.match(out, /^tocsin forensics: INDICATORS FOUND/);
  assert.match(out, /Timeline by client IP/);
  assert.match(out, /203\.0\.113\.50: \d+ record/);
  assert.equal(err, '');
  out = '';
  assert.equal(await runForensics({ paths: [TREE], format: 'jsonl', since: '2022-01-01' }, io), 1);
  const recs = records(out);
  const logRecs = recs.filter((x) => x.line !== null);
  assert.deepEqual(logRecs.map((x) => x.check).sort(), ['owassrf-powershell', 'proxynotshell-powershell']);
  assert.match(err, /INDICATORS FOUND/);
});

test('bad options and missing paths are errors with exit code 2 (TOCSIN_FORENSICS_INPUT)', async () => {
  const io = { stdout: { write: () => true }, stderr: { write: () => true } };
  await assert.rejects(runForensics({ paths: [`${TREE}/does-not-exist`] }, io), (e: unknown) => (e as { exitCode?: number }).exitCode === 2);
  await assert.rejects(runForensics({ paths: [TREE], format: 'xml' }, io), /--format/);
  await assert.rejects(runForensics({ paths: [TREE], since: 'yesterday' }, io), /--since/);
  await assert.rejects(runForensics({ paths: [] }, io), /PATH/);
});

test('--iocs: IP, file name, hash and user-agent lists applied to logs and files', async () => {
  const { createHash } = await import('node:crypto');
  const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-iocs-'));
  try {
    // A Microsoft file name with attacker content is only visible through its hash.
    const legit = join(TREE, AUTH, 'RedirSuiteServiceProxy.aspx');
    const sha = createHash('sha256').update(readFileSync(legit)).digest('hex');
    const list = join(tmp, 'case-42-iocs.txt');
    writeFileSync(list, `# case 42\n198.51.100.7\nerrorEE.aspx\n${sha}\npython-requests/2.26.0\n`);
    let out = '';
    const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true } };
    assert.equal(await runForensics({ paths: [TREE], format: 'jsonl', iocs: [list] }, io), 1);
    const recs = records(out);
    const ioc = recs.filter((x) => x.check.startsWith('ioc-')).map((x) => [x.check, rel(x), x.line, x.severity]);
    assert.deepEqual(ioc.sort(), [
      ['ioc-file-name', IIS, 13, 'info'],
      ['ioc-hash', `${AUTH}/RedirSuiteServiceProxy.aspx`, null, 'critical'],
      ['ioc-ip', IIS, 8, 'medium'],
      ['ioc-ip', IIS, 12, 'medium'],
      ['ioc-user-agent', AUTOD, 8, 'info'],
      ['ioc-user-agent', AUTOD, 9, 'info'],
      ['ioc-user-agent', IIS, 11, 'info'],
    ].sort());
    await assert.rejects(runForensics({ paths: [TREE], iocs: [join(tmp, 'missing.txt')] }, io), /--iocs/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('--since: the headline counts every indicator and says how many are before the date (issue 6, finding 9)', async () => {
  let out = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true, isTTY: false } };
  assert.equal(await runForensics({ paths: [TREE] }, io), 1);
  const all = /INDICATORS FOUND: (\d+) indicator record/.exec(out)?.[1];
  assert.ok(all !== undefined && Number(all) > 0);
  out = '';
  assert.equal(await runForensics({ paths: [TREE], since: '2030-01-01' }, io), 1);
  // Before: "INDICATORS FOUND: 0 indicator record(s)" while indicators exist before the date.
  assert.doesNotMatch(out, /INDICATORS FOUND: 0 indicator/);
  assert.match(out, new RegExp(`INDICATORS FOUND: ${all} indicator record\\(s\\).*; ${all} indicator\\(s\\) and \\d+ attempt\\(s\\) dated before --since 2030-01-01 are not listed`));
  const meta = JSON.parse(((await (async () => {
    out = '';
    await runForensics({ paths: [TREE], since: '2030-01-01', format: 'jsonl' }, io);
    return out;
  })()).split('\n')[0])!) as { meta: { counts: { indicators: number; indicatorsBeforeSince: number } } };
  assert.equal(meta.meta.counts.indicators, Number(all));
  assert.equal(meta.meta.counts.indicatorsBeforeSince, Number(all));
});

test('the text summary and the JSONL meta line name the kit version and the rules revision', async () => {
  let out = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true, isTTY: false } };
  await runForensics({ paths: [TREE] }, io);
  assert.match(out, new RegExp(`^tocsin-forensics ${KIT_VERSION.replace(/\./g, '\\.')}, rules ${rulesRevision()}; exit code 1 \\(indicators found\\)$`, 'm'));
  out = '';
  await runForensics({ paths: [TREE], format: 'jsonl' }, io);
  const meta = (JSON.parse(out.split('\n')[0]!) as { meta: Record<string, unknown> }).meta;
  assert.equal(meta.tool, 'tocsin-forensics');
  assert.equal(meta.version, KIT_VERSION);
  assert.equal(meta.rulesRevision, rulesRevision());
  assert.equal(meta.verdict, 'indicators-found');
  assert.equal(meta.exitCode, 1);
});

test('--iocs: lists under folders named hashes/ip/path keep their type; a list with nothing understood is an error (issue 6, finding 8)', async () => {
  const { mkdtempSync, mkdirSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-iocs-dirs-'));
  try {
    const dir = join(tmp, 'md5-and-sha-hashes', 'ip-path-name');
    mkdirSync(dir, { recursive: true });
    const names = join(dir, 'webshell_names.txt');
    writeFileSync(names, 'errorEE.aspx\nweb.aspx\n');
    let out = '';
    let err = '';
    const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false } };
    assert.equal(await runForensics({ paths: [TREE], format: 'jsonl', iocs: [names] }, io), 1);
    assert.doesNotMatch(err, /not an MD5|not an IP|fits no/);
    assert.match(err, /webshell_names\.txt: 2 file name\(s\)/);
    // errorEE.aspx is requested (404) in the IIS log: the list was applied, not lost.
    assert.ok(records(out).some((x) => x.check === 'ioc-file-name' && rel(x) === IIS && x.line === 13));
    const junk = join(dir, 'hashes.txt');
    writeFileSync(junk, 'not an indicator\nneither is this\n');
    await assert.rejects(runForensics({ paths: [TREE], iocs: [names, junk] }, io), (e: unknown) => {
      const x = e as { code?: string; message?: string; details?: readonly string[] };
      return x.code === 'TOCSIN_FORENSICS_INPUT' && /no indicator understood in .*hashes\.txt/.test(x.message ?? '') && (x.details ?? []).length === 2;
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('no Exchange or IIS log in the input: exit 2 with a notice, not "insufficient logs" and 0 (issue 6, finding 7)', async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-nologs-'));
  try {
    const bin = join(tmp, 'binary.log');
    writeFileSync(bin, Buffer.from(Array.from({ length: 4096 }, (_v, i) => (i % 7 === 0 ? 0 : i % 251))));
    // An executable without an extension (what `tocsin forensics /usr/bin/ls` reads): an ELF header and binary.
    const ls = join(tmp, 'ls');
    writeFileSync(ls, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(8192, 0), Buffer.from('GLIBC_2.34 /lib64/ld-linux-x86-64.so.2\n')]));
    let out = '';
    const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true, isTTY: false } };
    for (const p of [join(tmp, 'empty-dir-that-exists'), bin, ls]) {
      if (p.endsWith('exists')) (await import('node:fs')).mkdirSync(p);
      out = '';
      assert.equal(await runForensics({ paths: [p] }, io), 2, p);
      assert.match(out, /^tocsin forensics: NO LOGS: no Exchange or IIS log found/, p);
      assert.match(out, /error: \(all\): no Exchange or IIS log found in the input/, p);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
