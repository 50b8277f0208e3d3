/**
 * The shared detector conformance suite (GUIDE habit 8): every registered detector
 * - is listed in the registry (a detector exported from any file under src/detectors/ but not listed fails),
 * - has at least one positive and one negative recorded fixture, and states exactly the expected facts,
 * - never throws on hostile or random input (a few hundred deterministic fuzz cases),
 * - emits evidence whose excerpts are capped and free of control characters, and builds of digits and dots.
 * Plus the CI-only check against a real captured OWA page in ../shared/data/samples/owa/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TocsinError } from '../core/errors.js';
import { EXCHANGE_SIGNAL_KINDS } from './exchange/common.js';
import { fingerprintExchange } from './exchange/fingerprint.js';
import { EXCHANGE_PROBES, nextProbes } from './exchange/probes.js';
import { factSummary, loadAllFixtures } from '../../test/helpers/detector-fixtures.js';
// The lab's seeded PRNG: the fuzz cases are the same on every run.
import { prng as rng } from '../../lab/estate.js';
import { DETECTORS, PROBES, registerDetectors, runDetectors } from './registry.js';
import type { Detector, Fact, ProbeResponse } from './sdk.js';

const DETECTORS_DIR = fileURLToPath(new URL('.', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = loadAllFixtures(DETECTORS_DIR);
 
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Checks one fact a detector stated; returns problems (empty if fine). */
function factProblems(d: Detector, f: Fact): string[] {
  const p: string[] = [];
  const e = f.evidence;
  if (e.detector !== d.id) p.push(`evidence.detector ${e.detector} is not ${d.id}`);
  if (!d.probes.includes(e.probe)) p.push(`evidence.probe ${e.probe} is not one of the detector's probes`);
  if (typeof e.excerpt !== 'string' || e.excerpt.length > 200) p.push(`excerpt longer than 200 (${e.excerpt.length})`);
  if (CONTROL.test(e.excerpt)) p.push(`excerpt has control characters: ${JSON.stringify(e.excerpt)}`);
  if (e.url.length > 200 || CONTROL.test(e.url)) p.push('evidence url not capped/clean');
  if (e.name !== undefined && (e.name.length > 200 || CONTROL.test(e.name))) p.push('evidence name not capped/clean');
  // A header's name is in `name`; an excerpt that repeats it prints "server: server: ..." in reports.
  if (e.where === 'header' && e.name !== undefined && e.excerpt.toLowerCase().startsWith(`${e.name.toLowerCase()}:`)) p.push(`header excerpt repeats the name: ${JSON.stringify(e.excerpt)}`);
  if (f.kind === 'build') {
    const parts = f.precision === 'exact' ? 4 : 3;
    if (!new RegExp(`^\\d{1,5}(?:\\.\\d{1,5}){${parts - 1}}$`).test(f.build)) p.push(`bad ${f.precision} build ${JSON.stringify(f.build)}`);
  }
  if (f.kind === 'exchange-signal' && !EXCHANGE_SIGNAL_KINDS.some((k) => k === f.signal)) p.push(`unknown signal kind ${f.signal}`);
  if (f.kind === 'product' && !/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(f.product)) p.push(`product id ${JSON.stringify(f.product)} not kebab-case`);
  const declared =
    f.kind === 'build' ? `build:${f.precision}` : f.kind === 'exchange-signal' ? `signal:${f.signal}` : f.kind === 'exchange-online' ? 'online' : f.kind;
  if (f.kind === 'inconsistency' && (f.reason.length === 0 || f.reason.length > 200 || CONTROL.test(f.reason))) p.push('inconsistency reason not capped/clean');
  if (!(d.emits ?? []).some((x) => x === declared)) p.push(`fact ${declared} not declared in emits`);
  return p;
}

function runOne(d: Detector, responses: ReadonlyMap<string, ProbeResponse>): readonly Fact[] {
  const facts = d.detect(responses);
  for (const f of facts) assert.deepEqual(factProblems(d, f), [], `${d.id}: ${JSON.stringify(f)}`);
  return facts;
}

test('registry: metadata is valid and every probe a detector reads is in the plan', () => {
  assert.ok(DETECTORS.length >= 6);
  assert.doesNotThrow(() => registerDetectors(DETECTORS, PROBES));
  for (const d of DETECTORS) for (const p of d.probes) assert.ok(EXCHANGE_PROBES.some((x) => x.id === p), `${d.id} reads ${p}`);
});

test('registry: every detector exported by a file under src/detectors/ is listed', async () => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'fixtures') walk(p);
      } else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) files.push(p);
    }
  };
  walk(DETECTORS_DIR);
  const listed = new Set<unknown>(DETECTORS);
  const found = new Set<unknown>();
  for (const file of files) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      if (typeof value !== 'object' || value === null) continue;
      const v = value as Partial<Detector>;
      if (typeof v.id === 'string' && typeof v.revision === 'number' && typeof v.detect === 'function') {
        assert.ok(listed.has(value), `${relative(REPO_ROOT, file)} exports detector "${name}" (${v.id}) that registry.ts does not list`);
        found.add(value);
      }
    }
  }
  for (const d of DETECTORS) assert.ok(found.has(d), `${d.id} is listed but not exported by any file under src/detectors/`);
});

test('registry: bad metadata is refused at registration with TOCSIN_DETECTOR_INVALID, listing every problem', () => {
  const good = DETECTORS[0];
  assert.ok(good !== undefined);
  const bad: Detector[] = [
    { ...good, id: 'Not_Kebab' },
    { ...good },
    { ...good },
    { ...good, id: 'x-unknown-probe', probes: ['no-such-probe'] },
    { ...good, id: 'x-no-refs', references: [] },
    { ...good, id: 'x-bad-revision', revision: 0 },
    { ...good, id: 'x-no-emits', emits: [] },
  ];
  try {
    registerDetectors(bad, PROBES);
    assert.fail('expected a registration error');
  } catch (e) {
    assert.ok(e instanceof TocsinError);
    assert.equal(e.code, 'TOCSIN_DETECTOR_INVALID');
    const all = e.details.join('\n');
    assert.match(all, /Not_Kebab.*kebab-case/);
    assert.match(all, new RegExp(`${good.id}.*duplicate id`));
    assert.match(all, /unknown probe "no-such-probe"/);
    assert.match(all, /x-no-refs.*references must not be empty/);
    assert.match(all, /x-bad-revision.*revision/);
    assert.match(all, /x-no-emits.*emits/);
  }
  assert.throws(
    () => registerDetectors([], [{ id: 'p', method: 'POST' as 'GET', path: '/x\r\nHost: evil', purpose: 'x' }]),
    (e: unknown) => e instanceof TocsinError && e.details.length === 2,
  );
});

test('fixtures: every registered detector has at least one positive and one negative fixture', () => {
  assert.ok(FIXTURES.length >= 15, `only ${FIXTURES.length} fixtures`);
  for (const d of DETECTORS) {
    const listed = FIXTURES.filter((f) => d.id in f.expectFacts);
    const positive = listed.filter((f) => (f.expectFacts[d.id] ?? []).length > 0);
    const negative = listed.filter((f) => (f.expectFacts[d.id] ?? []).length === 0);
    assert.ok(positive.length >= 1, `${d.id} has no positive fixture`);
    assert.ok(negative.length >= 1, `${d.id} has no negative fixture`);
  }
});

for (const fx of FIXTURES) {
  test(`fixture ${fx.name}: detectors state exactly the expected facts`, () => {
    assert.ok(fx.description.length > 0);
    assert.equal(`${fx.name}.json`, fx.file.slice(fx.file.lastIndexOf('/') + 1));
    for (const [id, expected] of Object.entries(fx.expectFacts)) {
      const d = DETECTORS.find((x) => x.id === id);
      assert.ok(d !== undefined, `fixture names unknown detector ${id}`);
      const got = runOne(d, fx.responses).map(factSummary).sort();
      assert.deepEqual(got, [...expected].sort(), `${fx.name} / ${id}`);
    }
    const run = runDetectors(fx.responses);
    assert.deepEqual(run.errors, []);
    assert.equal(Object.keys(run.revisions).length, DETECTORS.length);
  });
}

const HEADER_NAMES = ['x-owa-version', 'x-feserver', 'x-calculatedbetarget', 'x-beserver', 'x-diaginfo', 'x-cafeserver', 'x-targetbeserver', 'server', 'location', 'content-type', 'x-\u0000odd'];
const BODY_BITS = [
  '/owa/', '/owa/auth/', '15', '14', '8', '.', '.', '3', '1', '2176', '0', '/', '//', 'assemblyIdentity', '<', '>', ':', '"', "'",
  'name="microsoft.exchange.ediscovery.exporttool.application"', ' version="15.1.2176.9"', ' version="15.01.2176.9"',
  'OwaPage = ASP.auth_logon_aspx', 'name="logonForm"', '<title>Outlook</title>', 'Outlook Web App', 'clkLgn()', 'iisstart.png',
  '\u0000', '\u001b[2J', '\u009b', '\u202e', '\r\n', 'é', '\uffff', '99999999999999999999',
];
const URLS = [
  'https://192.0.2.1/owa/auth/logon.aspx', 'https://192.0.2.1/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application',
  'https://192.0.2.1/owa/auth/errorFE.aspx?httpCode=500', 'http://[::1]:8080/autodiscover/autodiscover.xml', 'not a url', '',
  `https://192.0.2.1/${'a'.repeat(5000)}`, 'https://192.0.2.1/ECP/15.1.2176.9/EXPORTTOOL/microsoft.exchange.ediscovery.exporttool.application',
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function fuzzValue(r: () => number): string {
  switch (Math.floor(r() * 10)) {
    case 0: return `${Math.floor(r() * 20)}.${Math.floor(r() * 30)}.${Math.floor(r() * 3000)}.${Math.floor(r() * 50)}`;
    case 1: return '15.1.2176.9' + pick(r, ['', '.', '<b>', '\u0000', ' ', '\t', '\r\n x']);
    case 2: return 'x'.repeat(Math.floor(r() * 20000));
    case 3: return pick(r, ['EX01', 'AM0PR02CA0046.EURPRD02.PROD.OUTLOOK.COM', 'a.prod.outlook.com', '-', '.', '']);
    case 4: return String.fromCharCode(...Array.from({ length: 40 }, () => Math.floor(r() * 256)));
    case 5: return '\u202eEXCH\u0007';
    case 6: return 'Microsoft-IIS/10.0';
    case 7: return 'nginx/1.18.0 \u001b[31m';
    case 8: return ' \t 14.3.513.0 \t ';
    default: return String(r());
  }
}

function fuzzBody(r: () => number): Buffer {
  const mode = r();
  if (mode < 0.1) return Buffer.from(Array.from({ length: Math.floor(r() * 4096) }, () => Math.floor(r() * 256)));
  if (mode < 0.15) return Buffer.alloc(256 * 1024, '/owa/');
  const parts: string[] = [];
  const n = Math.floor(r() * 400);
  for (let i = 0; i < n; i++) parts.push(pick(r, BODY_BITS));
  return Buffer.from(parts.join(''), r() < 0.5 ? 'latin1' : 'utf8');
}

function fuzzResponse(r: () => number, probeId: string): ProbeResponse {
  const fixtureResponses = FIXTURES.flatMap((f) => [...f.responses.values()]);
  if (r() < 0.3 && fixtureResponses.length > 0) {
    // Mutate a recorded response: flip bytes, cut the body, swap header values.
    const base = pick(r, fixtureResponses);
    const body = Buffer.from(base.body.subarray(0, Math.floor(r() * (base.body.length + 1))));
    for (let i = 0; i < 8 && body.length > 0; i++) body[Math.floor(r() * body.length)] = Math.floor(r() * 256);
    const headers = base.headers.map(([k, v]) => [k, r() < 0.3 ? fuzzValue(r) : v] as const);
    return { ...base, probeId, body, headers, truncated: r() < 0.5 };
  }
  const headers: Array<readonly [string, string]> = [];
  const nh = Math.floor(r() * 12);
  for (let i = 0; i < nh; i++) headers.push([pick(r, HEADER_NAMES), fuzzValue(r)]);
  return {
    probeId,
    url: pick(r, URLS),
    status: pick(r, [0, 200, 200, 302, 401, 403, 404, 500, 999, -1]),
    statusLine: fuzzValue(r),
    headers,
    body: fuzzBody(r),
    truncated: r() < 0.2,
    redirects: r() < 0.3 ? [pick(r, URLS), pick(r, URLS)] : [],
  };
}

test('fuzz: 400 deterministic hostile responses never make a detector, the plan or the fingerprint throw', () => {
  const r = rng(0x70c5_1a);
  const probeIds = EXCHANGE_PROBES.map((p) => p.id);
  let factsSeen = 0;
  for (let i = 0; i < 400; i++) {
    const responses = new Map<string, ProbeResponse>();
    for (const id of probeIds) if (r() < 0.6) responses.set(id, fuzzResponse(r, id));
    for (const d of DETECTORS) factsSeen += runOne(d, responses).length;
    const run = runDetectors(responses);
    assert.deepEqual(run.errors, []);
    const fp = fingerprintExchange(run.facts);
    if (fp.build !== null) assert.match(fp.build, /^\d+(?:\.\d+){2,3}$/);
    for (const e of fp.evidence) assert.ok(e.excerpt.length <= 200 && !CONTROL.test(e.excerpt));
    for (const n of fp.notes) assert.ok(!CONTROL.test(n), JSON.stringify(n));
    const sent = new Set<string>(responses.keys());
    sent.add('owa-logon');
    for (const p of nextProbes(responses, sent)) {
      assert.ok(!sent.has(p.id), `plan re-sent ${p.id}`);
      assert.ok(probeIds.includes(p.id));
    }
  }
  // The mutated recordings must have exercised the positive paths too, or the fuzz proves little.
  assert.ok(factsSeen > 100, `only ${factsSeen} facts across the fuzz run`);
});

// CI-only: a real captured OWA 2016 CU9 logon page (../shared, beside the repository).
const SAMPLE = join(REPO_ROOT, '..', 'shared', 'data', 'samples', 'owa', 'owa-logon-exchange2016-cu9-15.1.1466.html');
const sampleMissing = !existsSync(SAMPLE);
const ci = process.env['CI'] === 'true';
test(
  'CI sample: the asset-path detector reads 15.1.1466 at CU precision from a real OWA 2016 CU9 page',
  { skip: sampleMissing && !ci ? 'sample ../shared/data/samples/owa/ not present (runs in CI)' : false },
  () => {
    assert.ok(existsSync(SAMPLE), `CI=true but the sample is missing: ${relative(REPO_ROOT, SAMPLE)}`);
    const body = readFileSync(SAMPLE);
    const response: ProbeResponse = {
      probeId: 'owa-logon',
      url: 'https://192.0.2.1/owa/auth/logon.aspx',
      status: 200,
      statusLine: 'HTTP/1.1 200 OK',
      // As the honeypot that served it: IIS/7.5 and no Exchange headers.
      headers: [['server', 'Microsoft-IIS/7.5'], ['content-type', 'text/html; charset=utf-8']],
      body,
      truncated: false,
      redirects: [],
    };
    const responses = new Map([['owa-logon', response]]);
    const asset = DETECTORS.find((d) => d.id === 'exchange-owa-asset-path');
    assert.ok(asset !== undefined);
    const builds = runOne(asset, responses).filter((f) => f.kind === 'build');
    assert.deepEqual(builds.map(factSummary), ['build:15.1.1466:cu']);
    const markers = DETECTORS.find((d) => d.id === 'exchange-owa-page-markers');
    assert.ok(markers !== undefined);
    assert.deepEqual(runOne(markers, responses).map(factSummary), ['signal:owa-page']);
    // Page alone is one signal kind: a real page served by a honeypot is not called Exchange.
    assert.notEqual(fingerprintExchange(runDetectors(responses).facts).product, 'ms-exchange');
  },
);
