/**
 * CI conformance on real, anonymised extracts of a March 2021 ProxyLogon compromise and on published
 * IoC lists (../shared/data/samples, beside the repository; not vendored). Every exploitation trace
 * in them must be found; the scanner line in httpproxy-samples-anonymized.log must not be flagged.
 * With CI=true a missing sample is a failure; elsewhere these tests are skipped when it is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze } from '../src/forensics/analyze.js';
import { parseIocFile, type IocSet } from '../src/forensics/iocs.js';
import type { FindingRecord } from '../src/forensics/types.js';

const SAMPLES = fileURLToPath(new URL('../../shared/data/samples/', import.meta.url));
const LOGS = join(SAMPLES, 'proxylogon-logs');
const IOCS = join(SAMPLES, 'iocs');
const inCi = process.env.CI === 'true';
const skipLogs = !inCi && !existsSync(LOGS) ? 'samples not present (../shared/data/samples/proxylogon-logs)' : false;
const skipIocs = !inCi && !existsSync(IOCS) ? 'samples not present (../shared/data/samples/iocs)' : false;

function base(f: FindingRecord): string {
  return f.file.slice(f.file.replace(/\\/g, '/').lastIndexOf('/') + 1);
}

function lines(fs: readonly FindingRecord[], file: string, check?: RegExp): number[] {
  return [...new Set(fs.filter((f) => base(f) === file && (check === undefined || check.test(f.check))).map((f) => f.line ?? -1))].sort((a, b) => a - b);
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_v, i) => a + i);
}

test('ProxyLogon extracts: every exploitation trace found, the scanner line silent', { skip: skipLogs }, async () => {
  assert.ok(existsSync(LOGS), `missing ${LOGS}`);
  const r = await analyze({ paths: [LOGS] });
  const f = r.findings;
  // 01: Test-ProxyLogon output, 11 SSRF rows (autodiscover ones carry the X-BEResource cookie).
  assert.deepEqual(lines(f, '01_httpproxy_ecp_cve-2021-26855_Test-ProxyLogon-output.csv', /^proxylogon-ssrf/), range(3, 13));
  assert.ok(f.filter((x) => base(x).startsWith('01_')).every((x) => x.clientIp === '130.255.189.21'));
  assert.deepEqual(lines(f, '01_httpproxy_ecp_cve-2021-26855_Test-ProxyLogon-output.csv', /^proxylogon-oab-reset$/), [12]);
  // Issue 6, finding 9: the autodiscover.xml SSRF rows with the exploit cookie answered 200 (lines 3 and 7) are
  // exploitation, not attempts; SetObject on OABVirtualDirectory (lines 11 and 13) is CVE-2021-27065.
  const f01 = f.filter((x) => base(x).startsWith('01_'));
  assert.deepEqual(f01.filter((x) => x.check === 'proxylogon-ssrf-autodiscover').map((x) => [x.line, x.severity, x.cve]), [
    [3, 'high', 'CVE-2021-26855'],
    [7, 'high', 'CVE-2021-26855'],
  ]);
  assert.deepEqual(lines(f, '01_httpproxy_ecp_cve-2021-26855_Test-ProxyLogon-output.csv', /^proxylogon-oab-setobject$/), [11, 13]);
  assert.ok(f01.filter((x) => x.check === 'proxylogon-oab-setobject').every((x) => x.cve === 'CVE-2021-27065,CVE-2021-26855'));
  assert.ok(f01.every((x) => x.severity !== 'info'), 'every row of the Test-ProxyLogon output is an indicator');
  // 02: the two Set-OabVirtualDirectory calls with a script in ExternalUrl.
  assert.deepEqual(lines(f, '02_ecpserver_cve-2021-27065_extract.log'), [7, 19]);
  assert.ok(f.filter((x) => base(x).startsWith('02_')).every((x) => x.cve === 'CVE-2021-27065'));
  // 03: IIS requests for RedirSuiteServerProxy.aspx: 200s are web-shell use, 302s probes.
  assert.deepEqual(lines(f, '03_iis_w3svc1_webshell_access_extract.log', /^webshell-request$/), [1, 2, 4, 5, 6]);
  assert.deepEqual(lines(f, '03_iis_w3svc1_webshell_access_extract.log', /^webshell-probe$/), [8, 9, 10]);
  // 04/05: HttpProxy\Owa hits of two attacker IPs probing web-shell names.
  assert.deepEqual(lines(f, '04_httpproxy_owa_hits_139.162.202.236.csv'), range(2, 6));
  assert.deepEqual(lines(f, '04_httpproxy_owa_hits_139.162.202.236.csv', /^webshell-request$/), [2, 3]);
  assert.ok(f.filter((x) => base(x).startsWith('04_')).every((x) => x.clientIp === '139.162.202.236'));
  // (line 35 is a "-----" separator of the extract)
  assert.deepEqual(lines(f, '05_httpproxy_owa_hits_67.205.176.9.csv'), range(2, 71).filter((n) => n !== 35));
  // The benign lines, one a scanner fetching the exporttool manifest: nothing.
  assert.deepEqual(lines(f, 'httpproxy-samples-anonymized.log'), []);
  assert.equal(r.verdict, 'indicators-found');
});

test('IoC samples: SCS-Labs lists and CISA CHIRP AA21-062A load with the expected counts', { skip: skipIocs }, () => {
  assert.ok(existsSync(IOCS), `missing ${IOCS}`);
  let set: IocSet | undefined;
  const names = readdirSync(IOCS).sort();
  for (const n of names.filter((x) => x.startsWith('scs-labs-'))) set = parseIocFile(readFileSync(join(IOCS, n), 'utf8'), n, set);
  assert.equal(set!.ips.size, 15);
  assert.equal(set!.hashes.size, 8);
  assert.equal(set!.fileNames.size, 14);
  assert.ok(set!.fileNames.has('aspnet_client.aspx'));
  // 8 lines, 5 distinct folders once placeholders and install roots are removed.
  assert.equal(set!.paths.length, 5);
  assert.ok(set!.paths.includes('frontend/httpproxy/owa/auth'));
  assert.ok(set!.userAgents.includes('antsword/v2.1'));
  const chirp = parseIocFile(readFileSync(join(IOCS, 'cisa-chirp-AA21062A.yaml'), 'utf8'), 'cisa-chirp-AA21062A.yaml');
  assert.equal(chirp.ips.size, 15);
  // Three log-string rules; the user-agent rule becomes user agents (info, not evidence alone).
  assert.equal(chirp.logStrings.length, 3);
  assert.ok(chirp.userAgents.some((u) => u.includes('googlebot/2.1')));
  assert.ok(chirp.userAgents.includes('antsword/v2.1'));
  assert.deepEqual(chirp.contentSignatures.map((s) => s.name), [
    'simpleseesharp : Webshell Unclassified',
    'reGeorgTunnel : Webshell Commodity',
    'sportsball : Webshell',
    'Detection for the use of procdump to dump LSASS process memory.',
  ]);
});

test('IoC samples applied to the extracts: the CHIRP Set-OabVirtualDirectory string and the exploit user agents match', { skip: skipLogs || skipIocs }, async () => {
  const scsUa = parseIocFile(readFileSync(join(IOCS, 'scs-labs-hafnium-useragents.txt'), 'utf8'), 'scs-labs-hafnium-useragents.txt');
  const chirp = parseIocFile(readFileSync(join(IOCS, 'cisa-chirp-AA21062A.yaml'), 'utf8'), 'cisa-chirp-AA21062A.yaml', scsUa);
  const r = await analyze({ paths: [LOGS], iocs: chirp });
  assert.deepEqual(lines(r.findings, '02_ecpserver_cve-2021-27065_extract.log', /^ioc-log-string$/), [7, 19]);
  const ua = r.findings.filter((x) => x.check === 'ioc-user-agent' && base(x).startsWith('01_'));
  assert.equal(ua.length, 11);
  assert.ok(ua.every((x) => x.severity === 'info'));
  assert.deepEqual(lines(r.findings, 'httpproxy-samples-anonymized.log'), []);
});

test('a log holding only the autodiscover SSRF step with the exploit cookie is called compromised (issue 6, finding 9)', { skip: skipLogs }, async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-autod-'));
  try {
    // The header lines and the first row of the real extract: the step that reads autodiscover.xml.
    const src = readFileSync(join(LOGS, '01_httpproxy_ecp_cve-2021-26855_Test-ProxyLogon-output.csv'), 'utf8').split('\n');
    writeFileSync(join(tmp, 'autodiscover-step.csv'), `${src.slice(0, 3).join('\n')}\n`);
    const r = await analyze({ paths: [tmp] });
    assert.equal(r.verdict, 'indicators-found');
    assert.deepEqual(r.findings.map((x) => [x.check, x.severity, x.line]), [['proxylogon-ssrf-autodiscover', 'high', 3]]);
    // The same row answered 500 (a patched or failing server) stays an attempt.
    writeFileSync(join(tmp, 'autodiscover-step.csv'), `${src.slice(0, 3).join('\n').replace(/"200"\s*$/, '"500"')}\n`);
    const a = await analyze({ paths: [tmp] });
    assert.deepEqual(a.findings.map((x) => [x.check, x.severity]), [['proxylogon-ssrf-autodiscover-attempt', 'info']]);
    assert.notEqual(a.verdict, 'indicators-found');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
