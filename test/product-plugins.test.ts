/**
 * The product plugin boundary is real (issue 7): a second, tiny product defined HERE ("acme-mail": one
 * probe, one detector, a fingerprint and a two-line knowledge base) is registered next to Exchange through
 * the registry API, and scanned with the real engine and probe client against an in-test HTTP server on
 * 127.47.0.0/24 (no other test uses 127.47). Also: the registry refuses invalid products, and no code
 * outside src/products/exchange/ names Exchange's product id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { runScan } from '../src/scan/engine.js';
import type { AttemptResult } from '../src/scan/ports.js';
import { renderTable, tableStyle } from '../src/scan/output.js';
import { DEFAULT_LIMITS } from '../src/core/contracts/probe.js';
import type { ScanRecord } from '../src/core/contracts/scan-record.js';
import { TocsinError } from '../src/core/errors.js';
import { openHostSession } from '../src/platform/net/http-probe.js';
import { PRODUCTS, productRuntimes, registerProducts } from '../src/products/registry.js';
import { exchange } from '../src/products/exchange/index.js';
import { header, type Detector, type Fact, type Product, type ProductFingerprint } from '../src/products/sdk.js';
import { decideReport, reportQuery } from '../src/services/report-policy.js';
import type { ReportRows } from '../src/platform/db/report.js';

const root = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------------
// The second product, defined in the test

const ACME = 'acme-mail';

const acmeBanner: Detector = {
  id: 'acme-banner',
  revision: 1,
  product: ACME,
  description: 'The X-Acme-Version header of /acme/version.',
  probes: ['acme-version'],
  references: ['https://example.org/acme-mail'],
  emits: ['build:exact', 'signal:acme-header'],
  detect(responses) {
    const r = responses.get('acme-version');
    const v = r === undefined ? undefined : header(r, 'x-acme-version');
    if (r === undefined || v === undefined || !/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v)) return [];
    const evidence = { detector: 'acme-banner', probe: 'acme-version', url: r.url, where: 'header' as const, name: 'x-acme-version', excerpt: v };
    return [{ kind: 'build', build: v, precision: 'exact', evidence }];
  },
};

function acmeFingerprint(facts: readonly Fact[]): ProductFingerprint {
  const b = facts.find((f): f is Extract<Fact, { kind: 'build' }> => f.kind === 'build' && f.evidence.detector === 'acme-banner');
  if (b === undefined) return { product: null, build: null, precision: null, evidence: [], notes: [] };
  return { product: ACME, build: b.build, precision: b.precision, evidence: [b.evidence], notes: [] };
}

const ACME_KB = {
  version: 'acme-test-1',
  assess: (build: string) => {
    const old = build.startsWith('1.');
    return { edition: 'AcmeMail', cu: build.split('.').slice(0, 2).join('.'), su: null, vulnerable: old ? ['CVE-2099-1111'] : [], indeterminate: [], notes: [], known: true };
  },
};

const acme: Product = {
  id: ACME,
  name: 'Acme Mail',
  probes: [{ id: 'acme-version', method: 'GET', path: '/acme/version', purpose: 'the Acme Mail version header' }],
  nextProbes: (_answered, sent) => (sent.has('acme-version') ? [] : acme.probes),
  detectors: [acmeBanner],
  fingerprint: acmeFingerprint,
  kb: { load: () => ACME_KB, tables: () => ({}), prime: () => undefined },
  cveGroups: () => ({
    groups: [{ name: 'AcmeBleed', cves: ['CVE-2099-1111'], headline: true, references: ['https://example.org/acmebleed'], source: 'test' }],
    headline: [{ cve: 'CVE-2099-1111', group: 'AcmeBleed' }],
  }),
  report: { countedApart: [], patchedNeedsBuild: false, serversLabel: 'Acme Mail', definition: 'patched = no {headline} CVE open' },
  display: { column: 'ACME', cell: (edition, cu) => `${edition ?? '?'} ${cu ?? '?'}`, related: {} },
};

// ---------------------------------------------------------------------------------------------------
// The in-test network: three addresses on one port

const OWA_BODY = readFileSync(join(root, 'src/products/exchange/fixtures/bodies/owa-2016-cu19-15.1.2176.html'));
const HOSTS = { exchange: '127.47.0.1', acme: '127.47.0.2', nothing: '127.47.0.3' } as const;

/** What each address answers, and the paths it was asked for. */
function handler(ip: string, seen: Map<string, string[]>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '';
    seen.set(ip, [...(seen.get(ip) ?? []), path]);
    if (ip === HOSTS.exchange && path === '/owa/auth/logon.aspx') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', server: 'Microsoft-IIS/10.0', 'x-owa-version': '15.1.2176.2', 'x-feserver': 'EX16-MBX01' });
      res.end(OWA_BODY);
      return;
    }
    if (ip === HOSTS.acme && path === '/acme/version') {
      res.writeHead(200, { 'x-acme-version': '1.4.2.0', 'content-type': 'text/plain' });
      res.end('acme');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain', server: 'nginx' });
    res.end('not found');
  };
}

async function listen(server: Server, ip: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function withNetwork<T>(run: (port: number, seen: Map<string, string[]>) => Promise<T>): Promise<T> {
  const seen = new Map<string, string[]>();
  const servers = Object.values(HOSTS).map((ip) => createServer(handler(ip, seen)));
  const first = servers[0];
  assert.ok(first !== undefined);
  const port = await listen(first, HOSTS.exchange, 0);
  try {
    await listen(servers[1] as Server, HOSTS.acme, port);
    await listen(servers[2] as Server, HOSTS.nothing, port);
    return await run(port, seen);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

async function scan(products: readonly Product[], port: number): Promise<Map<string, AttemptResult>> {
  const results = new Map<string, AttemptResult>();
  await runScan({
    targets: Object.values(HOSTS).map((ip) => ({ ip, hostname: null })),
    ports: [{ port, mode: 'http' }],
    concurrency: 3,
    limits: DEFAULT_LIMITS,
    kit: { openSession: openHostSession, products: productRuntimes(products) },
    maxLoopLagMs: 0,
    onResult: (r) => {
      results.set(r.ip, r);
    },
  });
  return results;
}

/** A record without its time, for comparing two scans. */
function timeless(r: ScanRecord | null | undefined): Omit<ScanRecord, 'scannedAt'> | null {
  if (r === null || r === undefined) return null;
  const { scannedAt: _at, ...rest } = r;
  return rest;
}

test('a second product registered through the registry API: both plans run, each record names its product, Exchange verdicts unchanged', async () => {
  const both = registerProducts([...PRODUCTS, acme]);
  assert.deepEqual(both.map((p) => p.id), ['ms-exchange', ACME]);

  // The same network scanned twice: Exchange alone, then both products.
  const [exchangeOnly, twoProducts] = await withNetwork(async (port, seen) => {
    const once = async (products: readonly Product[]): Promise<{ results: Map<string, AttemptResult>; seen: Map<string, string[]> }> => {
      seen.clear();
      const results = await scan(products, port);
      return { results, seen: new Map(seen) };
    };
    return [await once(PRODUCTS), await once(both)] as const;
  });

  // Traffic: with Exchange alone, exactly Exchange's plan (the acme path is never asked); with both,
  // every host is also asked the acme probe, once.
  for (const ip of Object.values(HOSTS)) {
    const alone = exchangeOnly.seen.get(ip) ?? [];
    const withAcme = twoProducts.seen.get(ip) ?? [];
    assert.ok(!alone.includes('/acme/version'), `${ip}: ${alone.join(' ')}`);
    assert.deepEqual(withAcme.filter((p) => p === '/acme/version'), ['/acme/version'], `${ip}: ${withAcme.join(' ')}`);
    assert.deepEqual(withAcme.filter((p) => p !== '/acme/version'), alone, `${ip}: Exchange's own requests unchanged`);
  }
  assert.deepEqual(exchangeOnly.seen.get(HOSTS.nothing), ['/owa/auth/logon.aspx'], 'a non-Exchange host costs Exchange one request');

  // Records: the Exchange host is Exchange with the same verdicts either way; the acme host is acme-mail
  // with the acme knowledge base's verdicts; the third host is nobody's.
  const ex = twoProducts.results.get(HOSTS.exchange)?.record;
  assert.equal(ex?.product, 'ms-exchange');
  assert.equal(ex?.build, '15.1.2176.2');
  assert.ok((ex?.vulnerable.length ?? 0) > 0);
  assert.ok(ex?.vulnerable.includes('CVE-2021-26855'));
  assert.deepEqual(timeless(ex), timeless(exchangeOnly.results.get(HOSTS.exchange)?.record));

  const ac = twoProducts.results.get(HOSTS.acme);
  assert.equal(ac?.record?.product, ACME);
  assert.deepEqual([ac?.record?.build, ac?.record?.buildPrecision, ac?.record?.edition], ['1.4.2.0', 'exact', 'AcmeMail']);
  assert.deepEqual(ac?.record?.vulnerable, ['CVE-2099-1111']);
  assert.equal(ac?.detectorRevisions['acme-banner'], 1, 'the acme detector ran and is recorded');
  assert.equal(ac?.detectorRevisions['exchange-x-owa-version'], 1, 'so did every Exchange detector');
  assert.notEqual(exchangeOnly.results.get(HOSTS.acme)?.record?.product, ACME, 'without the plugin nobody calls it acme-mail');

  const none = twoProducts.results.get(HOSTS.nothing)?.record;
  assert.ok(none !== null && none !== undefined);
  assert.notEqual(none.product, 'ms-exchange');
  assert.notEqual(none.product, ACME);
  assert.deepEqual(none.vulnerable, []);

  // The table shows each record by its product and counts each product's services apart.
  const records = [...twoProducts.results.values()].flatMap((r) => (r.record === null ? [] : [r.record]));
  const table = renderTable(records, tableStyle(both));
  assert.match(table[0] ?? '', /^ADDRESS +PRODUCT +BUILD/);
  assert.ok(table.some((l) => l.startsWith('127.47.0.2:') && l.includes('AcmeMail 1.4') && l.includes('AcmeBleed')), table.join('\n'));
  assert.ok(table.some((l) => l.includes('1 on-premises Exchange; 1 Acme Mail;')), table.join('\n'));
});

test('the report policy is the product\'s: the same counts give each product its own headline and patched rules', () => {
  const rows: ReportRows = {
    scope: { kind: 'latest', scanIds: ['1'], scan: null },
    hosts: { attempted: 3, distinctIps: 3, answered: 3, byOutcome: { answered: 3 } },
    servers: 3, services: 3, exactBuild: 2, countedApart: 0, byEditionCu: [],
    cves: [{ cve: 'CVE-2099-1111', vulnerable: 1, indeterminate: 0 }],
    anyIndeterminate: 0,
    sets: [
      { set: 'AcmeBleed', hasBuild: true, vulnerable: true, indeterminate: false, servers: 1 },
      { set: 'AcmeBleed', hasBuild: false, vulnerable: false, indeterminate: false, servers: 1 },
      { set: 'AcmeBleed', hasBuild: true, vulnerable: false, indeterminate: false, servers: 1 },
      { set: '*', hasBuild: true, vulnerable: true, indeterminate: false, servers: 1 },
      { set: '*', hasBuild: false, vulnerable: false, indeterminate: false, servers: 1 },
      { set: '*', hasBuild: true, vulnerable: false, indeterminate: false, servers: 1 },
    ],
  };
  const subject = { id: ACME, report: acme.report, groups: acme.cveGroups() };
  assert.deepEqual(reportQuery(subject).sets, [{ name: 'AcmeBleed', cves: ['CVE-2099-1111'] }, { name: '*', cves: ['CVE-2099-1111'] }]);
  const r = decideReport(rows, subject, '2026-01-01T00:00:00.000Z');
  // acme counts a server without a build as patched (patchedNeedsBuild: false); Exchange would not.
  assert.deepEqual([r.patched.patched, r.patched.vulnerable, r.patched.undetermined], [2, 1, 0]);
  assert.equal(r.patched.definition, 'patched = no AcmeBleed CVE open');
  assert.deepEqual(r.cves.map((c) => [c.cve, c.headline, c.group]), [['CVE-2099-1111', true, 'AcmeBleed']]);
  const asExchange = decideReport(rows, { id: ACME, report: exchange.report, groups: acme.cveGroups() }, '2026-01-01T00:00:00.000Z');
  assert.deepEqual([asExchange.patched.patched, asExchange.patched.vulnerable, asExchange.patched.undetermined], [1, 1, 1]);
});

test('the registry refuses invalid products with TOCSIN_DETECTOR_INVALID, naming each problem', () => {
  const refused = (products: readonly Product[], needle: string): void => {
    assert.throws(
      () => registerProducts(products),
      (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_DETECTOR_INVALID' && e.details.some((d) => d.includes(needle)),
      needle,
    );
  };
  refused([exchange, { ...acme, id: 'ms-exchange' }], 'duplicate product id');
  refused([exchange, { ...acme, probes: [{ ...exchange.probes[0]!, purpose: 'clash' }], detectors: [{ ...acmeBanner, probes: ['owa-logon'] }] }], 'probe "owa-logon" is also a probe of product "ms-exchange"');
  refused([exchange, { ...acme, detectors: [{ ...acmeBanner, probes: ['owa-logon'] }] }], 'unknown probe "owa-logon"');
  refused([exchange, { ...acme, detectors: [{ ...acmeBanner, id: 'exchange-x-owa-version' }] }], 'detector "exchange-x-owa-version" is also a detector of product "ms-exchange"');
  refused([{ ...acme, detectors: [{ ...acmeBanner, references: ['http://insecure'] }] }], 'is not an https URL');
  refused([{ ...acme, id: 'Acme_Mail' }], 'id must be kebab-case');
  refused([{ ...acme, probes: [{ ...acme.probes[0]!, method: 'POST' as 'GET' }] }], 'method must be GET or HEAD');
  refused([{ ...acme, report: { ...acme.report, countedApart: [ACME] } }], 'countedApart');
  refused([{ ...acme, report: { ...acme.report, definition: 'no placeholder' } }], '{headline}');
  assert.doesNotThrow(() => registerProducts([exchange, acme]));
});

// ---------------------------------------------------------------------------------------------------
// Nothing outside the Exchange folder names Exchange's product id

/** String and template literal texts of a TypeScript file (comments excluded), from the compiler's parse tree. */
function literalsOf(text: string): string[] {
  const file = ts.createSourceFile('x.ts', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      out.push(node.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}

function codeFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...codeFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

test("no 'ms-exchange' literal outside src/products/exchange/ (the engine, output, report and CLI ask the product)", () => {
  const exchangeDir = join(root, 'src', 'products', 'exchange');
  const offenders: string[] = [];
  for (const file of codeFiles(join(root, 'src'))) {
    if (file.startsWith(`${exchangeDir}/`)) continue;
    for (const lit of literalsOf(readFileSync(file, 'utf8'))) if (lit.includes('ms-exchange')) offenders.push(`${relative(root, file)}: ${lit}`);
  }
  assert.deepEqual(offenders, []);
  // The scanner sees literals (guards the test against a scanner that finds nothing).
  assert.deepEqual(literalsOf("const a = 'ms-exchange'; // 'ms-exchange-x'\nconst b = `x${a}ms-exchange`;"), ['ms-exchange', 'x', 'ms-exchange']);
  assert.ok(literalsOf(readFileSync(join(exchangeDir, 'index.ts'), 'utf8')).includes('ms-exchange'));
});
