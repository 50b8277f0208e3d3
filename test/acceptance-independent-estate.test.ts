/**
 * Acceptance test of issue 2 ("Done when"), checked the way a new user would: an independent estate
 * (test/helpers/independent-estate/, written without the project's lab) on 127.30.0.0/24 with Exchange
 * 2010 to SE, decoys and hostile hosts, scanned by the CLI in a child process:
 *
 *   tocsin scan @targets --ports <tls>/tls,<plain>/http --format jsonl --no-store
 *
 * The expected verdicts below were worked out by hand from Microsoft's fixing builds (cited per CU),
 * not read from the tool's knowledge base; a separate test cross-checks the cited builds against
 * data/exchange/cve-fixes.csv so a disagreement shows up as such.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert } from './helpers/independent-estate/cert.js';
import { HOSTILE_VALUES, startEstate, type Estate } from './helpers/independent-estate/estate.js';
import { ROOT, cliEntry, parseCsv, runCli, type CliResult } from './helpers/independent-estate/cli.js';

// --- Ground truth, by hand ---------------------------------------------------------------------------

type V = 'vulnerable' | 'not-vulnerable' | 'indeterminate';
const VULN: V = 'vulnerable';
const OK: V = 'not-vulnerable';
const IND: V = 'indeterminate';

const HEADLINE = ['CVE-2021-26855', 'CVE-2021-34473', 'CVE-2022-41082', 'CVE-2023-21529', 'CVE-2024-21410'] as const;
type Headline = (typeof HEADLINE)[number];

/**
 * First fixing build per CU, from Microsoft's security update announcements and build-number table
 * (learn.microsoft.com "Exchange Server build numbers and release dates"; MSRC Security Update Guide):
 * - CVE-2021-26855 ProxyLogon, March 2021 SU (KB5000871). 2016 CU20 (15.1.2242.4) and 2019 CU9
 *   (15.2.858.5), released 2021-03-16, contain it. Exchange 2010 is not affected (its March 2021
 *   update, RU32, addressed CVE-2021-26857 only).
 * - CVE-2021-34473 ProxyShell: code fix in the April 2021 SU (KB5001779), although the CVE was published
 *   in July 2021. 2016 CU21 / 2019 CU10 (June 2021) contain it.
 * - CVE-2022-41082 ProxyNotShell: November 2022 SU. 2019 CU13 (May 2023) contains it.
 * - CVE-2023-21529: February 2023 SU. 2019 CU13 contains it.
 * - CVE-2024-21410 (NTLM relay): fixed by Extended Protection, on by default from 2019 CU14
 *   (15.2.1544.4) and in SE; for 2019 CU13 and 2016 CU23 Microsoft lists no build, only enabling
 *   Extended Protection (configuration a scan cannot see).
 */
const FIXING_BUILDS: Readonly<Record<Headline, Readonly<Record<string, string>>>> = {
  'CVE-2021-26855': { 'Exchange Server 2013 CU23': '15.0.1497.12', 'Exchange Server 2016 CU19': '15.1.2176.9', 'Exchange Server 2019 CU8': '15.2.792.10' },
  'CVE-2021-34473': {
    'Exchange Server 2013 CU23': '15.0.1497.15', 'Exchange Server 2016 CU19': '15.1.2176.12', 'Exchange Server 2016 CU20': '15.1.2242.8',
    'Exchange Server 2019 CU8': '15.2.792.13', 'Exchange Server 2019 CU9': '15.2.858.10',
  },
  'CVE-2022-41082': {
    'Exchange Server 2013 CU23': '15.0.1497.44', 'Exchange Server 2016 CU22': '15.1.2375.37', 'Exchange Server 2016 CU23': '15.1.2507.16',
    'Exchange Server 2019 CU11': '15.2.986.36', 'Exchange Server 2019 CU12': '15.2.1118.20',
  },
  'CVE-2023-21529': {
    'Exchange Server 2013 CU23': '15.0.1497.47', 'Exchange Server 2016 CU23': '15.1.2507.21',
    'Exchange Server 2019 CU11': '15.2.986.41', 'Exchange Server 2019 CU12': '15.2.1118.25',
  },
  'CVE-2024-21410': { 'Exchange Server 2019 CU14': '15.2.1544.4' },
};

interface ExpectedExchange {
  readonly edition: string;
  readonly cu: RegExp;
  /** Acceptable `build` values (the 2019 CU9 drift host may be reported as seen or as listed). */
  readonly builds: readonly string[];
  readonly precision: 'exact' | 'cu';
  /** Expected SU name, or undefined to leave it unchecked. */
  readonly su?: string | null;
  readonly verdicts: readonly [V, V, V, V, V];
  /** Answers plain HTTP with a redirect to HTTPS on the same port: the plain port must give the same answer. */
  readonly redirects: boolean;
}

/**
 * Verdicts in HEADLINE order, derived from FIXING_BUILDS with the rules of the issue: fixed at or above
 * the fixing SU of the build's own CU, or when the CU was released after the fix; a CU that never got
 * the fix is vulnerable whatever its revision; with only the CU visible and a fixing SU inside that CU,
 * indeterminate; an edition Microsoft did not assess (out of support, no update when the fix shipped)
 * is indeterminate, never "not vulnerable" by omission; configuration-dependent fixes are indeterminate
 * where only configuration can protect.
 */
const EXCHANGE: Readonly<Record<string, ExpectedExchange>> = {
  // 2010 SP3 RU31 (Dec 2020). ProxyLogon: 2010 not affected. Others: 2010 out of support since
  // 2020-10-13 and not updated when they were fixed: not assessed by Microsoft.
  'ex2010-ru31': { edition: 'Exchange Server 2010', cu: /RU31/, builds: ['14.3.509.0'], precision: 'exact', verdicts: [OK, IND, IND, IND, IND], redirects: false },
  // 2013 CU23 Dec20SU .10 < .12 (Mar21SU) < .15 (Apr21SU) < .44 (Nov22SU) < .47 (Feb23SU). 2013 ended
  // support 2023-04-11, before CVE-2024-21410 (2024-02-13): not assessed.
  'ex2013-cu23-dec20': { edition: 'Exchange Server 2013', cu: /^CU23$/, builds: ['15.0.1497.10'], precision: 'exact', su: 'Dec20SU', verdicts: [VULN, VULN, VULN, VULN, IND], redirects: true },
  // 2013 CU23 Mar21SU .12: ProxyLogon fixed, the rest as above.
  'ex2013-cu23-mar21': { edition: 'Exchange Server 2013', cu: /^CU23$/, builds: ['15.0.1497.12'], precision: 'exact', su: 'Mar21SU', verdicts: [OK, VULN, VULN, VULN, IND], redirects: false },
  // 2016 CU19 Mar21SU 15.1.2176.9: ProxyLogon fixed; .9 < .12 (Apr21SU); CU19 never got the Nov22,
  // Feb23 updates nor Extended Protection support (Aug22SU was for CU22/CU23 only).
  'ex2016-cu19-mar21': { edition: 'Exchange Server 2016', cu: /^CU19$/, builds: ['15.1.2176.9'], precision: 'exact', su: 'Mar21SU', verdicts: [OK, VULN, VULN, VULN, VULN], redirects: true },
  // 2016 CU23 Oct25SU .61: CU23 (2022-04) came after the 2021 fixes; .61 >= .16 and .21; CVE-2024-21410
  // has no fixing build for 2016 CU23 (Extended Protection configuration): indeterminate.
  'ex2016-cu23-oct25': { edition: 'Exchange Server 2016', cu: /^CU23$/, builds: ['15.1.2507.61'], precision: 'exact', su: 'Oct25SU', verdicts: [OK, OK, OK, OK, IND], redirects: false },
  // 2019 CU9 reporting 15.2.858.2 (listed 15.2.858.5, 2021-03-16): CU9 includes the March fix;
  // below .10 (Apr21SU); CU9 never got Nov22/Feb23 updates nor Extended Protection.
  'ex2019-cu9-drift': { edition: 'Exchange Server 2019', cu: /^CU9$/, builds: ['15.2.858.2', '15.2.858.5'], precision: 'exact', verdicts: [OK, VULN, VULN, VULN, VULN], redirects: false },
  // 2019 CU12 seen at CU level only (15.2.1118): CU12 (2022-04-20) came after the 2021 fixes; the
  // Nov22SU (.20) and Feb23SU (.25) fixes are SUs inside CU12: indeterminate; CU12 never received the
  // CVE-2024-21410 fix (2019 CU14), whatever its SU: vulnerable.
  'ex2019-cu12-cu-only': { edition: 'Exchange Server 2019', cu: /^CU12$/, builds: ['15.2.1118'], precision: 'cu', su: null, verdicts: [OK, OK, IND, IND, VULN], redirects: false },
  // 2019 CU14 Oct25SU .36: CU14 is the CVE-2024-21410 fix; everything else is older.
  'ex2019-cu14-oct25': { edition: 'Exchange Server 2019', cu: /^CU14$/, builds: ['15.2.1544.36'], precision: 'exact', su: 'Oct25SU', verdicts: [OK, OK, OK, OK, OK], redirects: false },
  'ex2019-cu15-oct25': { edition: 'Exchange Server 2019', cu: /^CU15$/, builds: ['15.2.1748.39'], precision: 'exact', su: 'Oct25SU', verdicts: [OK, OK, OK, OK, OK], redirects: false },
  // SE RTM Oct25SU (15.2.2562.29): SE (2025-07) is the 2019 code base after all five fixes.
  'exse-rtm-oct25': { edition: 'Exchange Server SE', cu: /^RTM$/, builds: ['15.2.2562.29'], precision: 'exact', su: 'Oct25SU', verdicts: [OK, OK, OK, OK, OK], redirects: true },
};

const DECOYS = ['decoy-iis', 'decoy-nginx', 'decoy-owa-clone', 'decoy-exchange-online'];
const HOSTILE = ['hostile-tarpit', 'hostile-drip', 'hostile-garbage', 'hostile-oversized', 'hostile-headers', 'hostile-framing'];

// --- The run -------------------------------------------------------------------------------------------

interface Rec {
  readonly ip: string;
  readonly port: number;
  readonly hostname: string | null;
  readonly tls: boolean;
  readonly product: string | null;
  readonly edition: string | null;
  readonly build: string | null;
  readonly buildPrecision: string | null;
  readonly cu: string | null;
  readonly su: string | null;
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
  readonly evidence: readonly unknown[];
  readonly scannedAt: string;
}

let estate: Estate;
let dir: string;
let scan: CliResult;
let records: Rec[] = [];
const ipOf = new Map<string, string>();

function env(): Record<string, string> {
  // A fresh home; nothing from the developer's own configuration leaks in (contact URL, exclusions).
  return {
    TOCSIN_HOME: join(dir, 'home'), TOCSIN_DATABASE_URL: '', DATABASE_URL: '', TOCSIN_USER_AGENT: '', TOCSIN_CONTACT_URL: '',
    TOCSIN_EXCLUDE_FILES: '', TOCSIN_RATE_LIMIT: '', TOCSIN_RATE_PER_NETWORK: '', TOCSIN_CONCURRENCY: '', TOCSIN_WORKERS: '', NO_COLOR: '1',
  };
}

function targetsFile(name: string, ids: readonly string[]): string {
  const file = join(dir, name);
  writeFileSync(file, ['# independent estate, 127.30.0.0/24', ...ids.map((id) => `${ipOf.get(id) ?? '?'}  # ${id}`), ''].join('\n'));
  return file;
}

function recordOf(id: string, port: number): Rec | undefined {
  return records.find((r) => r.ip === ipOf.get(id) && r.port === port);
}

function verdict(r: Rec, cve: string): V {
  if (r.vulnerable.includes(cve)) return VULN;
  if (r.indeterminate.includes(cve)) return IND;
  return OK;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-independent-estate-'));
  estate = await startEstate(makeCert());
  for (const h of estate.hosts) ipOf.set(h.id, h.ip);
  const file = targetsFile('targets.txt', estate.hosts.map((h) => h.id));
  // Default limits, as a user would run it; the tarpit and the drip must not hold the scan.
  scan = await runCli(['scan', `@${file}`, '--ports', `${estate.tlsPort}/tls,${estate.plainPort}/http`, '--format', 'jsonl', '--no-store'], env(), 85_000);
  const text = scan.stdout.toString('utf8');
  records = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Rec);
}, { timeout: 100_000 });

after(async () => {
  await estate?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

// --- Assertions --------------------------------------------------------------------------------------

test('the scan finishes (exit 0) despite the tarpit, the slow drip, garbage and a 20 MB body', () => {
  const stderr = scan.stderr.toString('utf8');
  assert.equal(scan.signal, null, `the scan was killed after 85 s (entry ${cliEntry().compiled ? 'dist' : 'tsx'}); stderr: ${stderr.slice(0, 2000)}`);
  assert.equal(scan.code, 0, stderr.slice(0, 2000));
  assert.ok(records.length > 0, 'records on stdout');
  for (const r of records) {
    assert.match(r.ip, /^127\.30\.0\.\d+$/);
    assert.ok(r.port === estate.tlsPort || r.port === estate.plainPort);
    assert.ok(r.build === null || /^\d+(\.\d+)+$/.test(r.build), `build is digits and dots: ${String(r.build)}`);
    assert.ok(!Number.isNaN(Date.parse(r.scannedAt)), 'scannedAt is a date');
  }
  const keys = records.map((r) => `${r.ip}:${r.port}`);
  assert.equal(new Set(keys).size, keys.length, 'one record per (ip, port)');
  assert.equal(estate.foreignRefused, 0);
});

test('every Exchange host: ms-exchange, edition, CU, build and precision', () => {
  for (const [id, want] of Object.entries(EXCHANGE)) {
    const r = recordOf(id, estate.tlsPort);
    assert.ok(r !== undefined, `${id}: no record for the HTTPS port`);
    assert.equal(r.product, 'ms-exchange', `${id}: product`);
    assert.equal(r.tls, true, `${id}: tls`);
    assert.equal(r.edition, want.edition, `${id}: edition`);
    assert.match(r.cu ?? '', want.cu, `${id}: cu ${String(r.cu)}`);
    assert.ok(want.builds.includes(r.build ?? ''), `${id}: build ${String(r.build)}, expected ${want.builds.join(' or ')}`);
    assert.equal(r.buildPrecision, want.precision, `${id}: buildPrecision`);
    if (want.su !== undefined) assert.equal(r.su, want.su, `${id}: su`);
    assert.ok(r.evidence.length > 0, `${id}: verdicts come with evidence`);
  }
});

test('per-CVE verdicts of the headline CVEs match the hand-derived table', () => {
  const wrong: string[] = [];
  for (const [id, want] of Object.entries(EXCHANGE)) {
    const r = recordOf(id, estate.tlsPort);
    assert.ok(r !== undefined, `${id}: no record`);
    HEADLINE.forEach((cve, i) => {
      const got = verdict(r, cve);
      if (got !== want.verdicts[i]) wrong.push(`${id} ${cve}: tool says ${got}, by hand ${String(want.verdicts[i])}`);
    });
  }
  assert.deepEqual(wrong, []);
});

test('Exchange 2010 read from its full-build asset path: RU31 lacks the March 2021 fix that RU32 brought', () => {
  // Exchange 2010 SP3 RU32 (14.3.513.0, 2021-03-02) is the 2010 fix for CVE-2021-26857; RU31 is below it.
  const r = recordOf('ex2010-ru31', estate.tlsPort);
  assert.ok(r !== undefined);
  assert.equal(verdict(r, 'CVE-2021-26857'), VULN);
});

test('the CU-only host is indeterminate exactly where a security update inside its CU fixes the CVE', () => {
  const r = recordOf('ex2019-cu12-cu-only', estate.tlsPort);
  assert.ok(r !== undefined);
  assert.equal(r.buildPrecision, 'cu');
  assert.ok(r.indeterminate.includes('CVE-2022-41082'), 'Nov22SU 15.2.1118.20 is inside CU12');
  assert.ok(r.indeterminate.includes('CVE-2023-21529'), 'Feb23SU 15.2.1118.25 is inside CU12');
  assert.ok(!r.vulnerable.includes('CVE-2022-41082') && !r.vulnerable.includes('CVE-2023-21529'), 'never a guess of "vulnerable" from the CU alone');
});

test('plain HTTP redirected to HTTPS on the same port: followed, same answer; "SSL required" ports claim nothing', () => {
  for (const [id, want] of Object.entries(EXCHANGE)) {
    const plain = recordOf(id, estate.plainPort);
    if (want.redirects) {
      const tlsRec = recordOf(id, estate.tlsPort);
      assert.ok(plain !== undefined && tlsRec !== undefined, `${id}: records for both ports`);
      assert.equal(plain.product, 'ms-exchange', `${id}: plain port followed to HTTPS`);
      assert.deepEqual(
        [plain.edition, plain.cu, plain.build, plain.buildPrecision, [...plain.vulnerable].sort(), [...plain.indeterminate].sort()],
        [tlsRec.edition, tlsRec.cu, tlsRec.build, tlsRec.buildPrecision, [...tlsRec.vulnerable].sort(), [...tlsRec.indeterminate].sort()],
        `${id}: same answer on both ports`,
      );
    } else if (plain !== undefined) {
      // IIS 403.4 "SSL required" carries no Exchange signal at all.
      assert.notEqual(plain.product, 'ms-exchange', `${id}: a bare IIS 403 is not evidence of Exchange`);
      assert.deepEqual(plain.vulnerable, [], `${id}: plain port`);
    }
  }
});

test('no decoy is Exchange or vulnerable; Exchange Online is not an on-premises server', () => {
  for (const id of DECOYS) {
    for (const port of [estate.tlsPort, estate.plainPort]) {
      const r = recordOf(id, port);
      if (r === undefined) continue;
      assert.notEqual(r.product, 'ms-exchange', `${id}:${port} must not be reported as on-premises Exchange`);
      assert.deepEqual(r.vulnerable, [], `${id}:${port} has no vulnerable CVE`);
      assert.equal(r.edition === null || !/^Exchange Server/.test(r.edition), true, `${id}:${port} edition ${String(r.edition)}`);
    }
  }
  for (const id of ['decoy-iis', 'decoy-nginx', 'decoy-owa-clone', 'decoy-exchange-online']) {
    assert.ok(recordOf(id, estate.tlsPort) !== undefined, `${id} answered HTTPS, so it has a record`);
  }
  const exo = recordOf('decoy-exchange-online', estate.tlsPort);
  assert.ok(exo !== undefined);
  // The JSONL contract names Microsoft 365 front ends "ms-exchange-online".
  assert.equal(exo.product, 'ms-exchange-online', 'Exchange Online front end recognised as such');
  assert.deepEqual(exo.vulnerable, []);
});

test('hostile hosts neither crash the scan nor produce any claim', () => {
  for (const id of HOSTILE) {
    assert.ok(estate.connections(id) > 0, `${id} was contacted`);
    for (const port of [estate.tlsPort, estate.plainPort]) {
      const r = recordOf(id, port);
      if (r === undefined) continue;
      assert.notEqual(r.product, 'ms-exchange', `${id}:${port}`);
      assert.deepEqual(r.vulnerable, [], `${id}:${port}`);
    }
  }
  // Answered with a well-formed (if hostile) response: it must be in the output.
  assert.ok(recordOf('hostile-headers', estate.tlsPort) !== undefined, 'the hostile-headers host answered HTTP and has a record');
});

test('every request identifies Tocsin with a contact URL in the User-Agent', () => {
  assert.ok(estate.requests.length > 0);
  for (const q of estate.requests) {
    const ua = q.headers['user-agent'] ?? '';
    assert.match(ua, /Tocsin/, `${q.hostId} ${q.target}: ${ua}`);
    assert.match(ua, /https?:\/\/[^\s);]+/, `${q.hostId} ${q.target}: no contact URL in ${ua}`);
  }
});

test('non-intrusive: only bodiless GET/HEAD requests for public, anonymous paths', () => {
  const PUBLIC = [
    /^\/$/,
    /^\/owa\/?$/i,
    /^\/owa\/auth\/logon\.aspx(\?[\w%.=&-]*)?$/i,
    /^\/ecp\/Current\/exporttool\/microsoft\.exchange\.ediscovery\.exporttool\.application$/i,
    /^\/autodiscover\/autodiscover\.xml$/i,
    /^\/EWS\/Exchange\.asmx$/i,
    /^\/Microsoft-Server-ActiveSync$/i,
  ];
  for (const q of estate.requests) {
    const what = `${q.hostId}: ${q.method} ${q.target}`;
    assert.ok(q.method === 'GET' || q.method === 'HEAD', what);
    assert.ok(PUBLIC.some((re) => re.test(q.target)), `not a public path: ${what}`);
    assert.equal(q.headers['content-length'] ?? '0', '0', what);
    assert.equal(q.headers['transfer-encoding'], undefined, what);
    // ProxyLogon / ProxyShell exploitation markers must never appear.
    assert.doesNotMatch(`${q.target} ${q.headers.cookie ?? ''}`, /X-(?:BEResource|AnonResource)|localhost|@|powershell|autodiscover\.json/i, what);
  }
});

test('the hand-cited fixing builds agree with data/exchange/cve-fixes.csv', () => {
  const rows = parseCsv(readFileSync(join(ROOT, 'data', 'exchange', 'cve-fixes.csv'), 'utf8'));
  const head = rows[0] ?? [];
  const col = (name: string): number => {
    const i = head.indexOf(name);
    assert.ok(i >= 0, `column ${name}`);
    return i;
  };
  const [cCve, cEd, cCu, cBuild, cStatus] = [col('cve'), col('edition'), col('cu'), col('fixed_build'), col('status')];
  const disagreements: string[] = [];
  for (const cve of HEADLINE) {
    for (const [cuName, build] of Object.entries(FIXING_BUILDS[cve])) {
      const row = rows.find((r) => r[cCve] === cve && `${r[cEd]} ${r[cCu]}` === cuName);
      if (row === undefined) disagreements.push(`${cve} ${cuName}: no row (by hand ${build})`);
      else if (row[cBuild] !== build || row[cStatus] !== 'confirmed') disagreements.push(`${cve} ${cuName}: csv ${row[cBuild]} (${row[cStatus]}), by hand ${build}`);
    }
  }
  assert.deepEqual(disagreements, []);
});

test('CSV output: hostile header values stay inside their cells and no cell starts with = + - @', { timeout: 60_000 }, async () => {
  const ids = ['hostile-headers', 'hostile-framing', 'ex2016-cu19-mar21', 'decoy-owa-clone', 'decoy-nginx'];
  const file = targetsFile('csv-targets.txt', ids);
  // decoy-nginx is also excluded: an exclusion wins over a target and nothing is sent to it.
  const excluded = `${ipOf.get('decoy-nginx') ?? '?'}/32`;
  const nginxBefore = estate.connections('decoy-nginx');
  const r = await runCli(['scan', `@${file}`, '--ports', `${estate.tlsPort}/tls`, '--format', 'csv', '--no-store', '--exclude', excluded], env(), 55_000);
  assert.equal(r.code, 0, r.stderr.toString('utf8').slice(0, 2000));
  assert.equal(estate.connections('decoy-nginx'), nginxBefore, 'the excluded host was not contacted');
  const rows = parseCsv(r.stdout.toString('utf8'));
  const header = rows[0] ?? [];
  for (const name of ['ip', 'port', 'product', 'edition', 'build', 'buildPrecision', 'cu', 'su', 'vulnerable', 'indeterminate']) {
    assert.ok(header.includes(name), `CSV header has ${name}`);
  }
  const body = rows.slice(1);
  assert.ok(body.length >= 3, `rows: ${body.length}`);
  for (const row of body) {
    assert.equal(row.length, header.length, `row width: ${row.join('|').slice(0, 200)}`);
    for (const cell of row) assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `formula-like cell: ${cell.slice(0, 80)}`);
  }
  const col = (n: string): number => header.indexOf(n);
  assert.equal(body.some((row) => row[col('ip')] === ipOf.get('decoy-nginx')), false, 'no record for the excluded host');
  const hostile = body.find((row) => row[col('ip')] === ipOf.get('hostile-headers'));
  assert.ok(hostile !== undefined, 'the hostile-headers host is in the CSV');
  assert.notEqual(hostile[col('product')], 'ms-exchange');
  // The hostile Server banner is kept as evidence: it must be there, inside a cell, defused.
  assert.ok(hostile.some((cell) => cell.includes("cmd|' /C calc'")), `hostile value reached the CSV: ${hostile.join(' | ').slice(0, 300)}`);
  const ex = body.find((row) => row[col('ip')] === ipOf.get('ex2016-cu19-mar21'));
  assert.ok(ex !== undefined);
  assert.match(ex[col('vulnerable')] ?? '', /CVE-2021-34473/);
  assert.doesNotMatch(r.stdout.toString('latin1'), /\u001b/, 'no ESC byte in the CSV');
  // If a hostile value reached the file (e.g. as evidence), it is neutralised inside a cell, never at its start.
  const all = body.flat();
  for (const v of [HOSTILE_VALUES.formula, HOSTILE_VALUES.csvPlus, HOSTILE_VALUES.csvAt, HOSTILE_VALUES.csvMinus]) {
    for (const cell of all) assert.ok(!cell.startsWith(v), `cell starts with ${v}`);
  }
});

test('table output: no control character from a host reaches the terminal', { timeout: 60_000 }, async () => {
  const ids = ['hostile-headers', 'hostile-framing', 'hostile-garbage', 'ex2016-cu19-mar21'];
  const file = targetsFile('table-targets.txt', ids);
  const r = await runCli(['scan', `@${file}`, '--ports', `${estate.tlsPort}/tls`, '--format', 'table', '--no-store'], env(), 55_000);
  assert.equal(r.code, 0, r.stderr.toString('utf8').slice(0, 2000));
  const out = r.stdout.toString('utf8');
  const err = r.stderr.toString('utf8');
   
  const CTL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
  assert.doesNotMatch(out, CTL, 'stdout has a control character');
  assert.doesNotMatch(err, CTL, 'stderr has a control character');
  const line = out.split('\n').find((l) => l.includes(`${ipOf.get('ex2016-cu19-mar21') ?? '?'}:${estate.tlsPort}`));
  assert.ok(line !== undefined, `the Exchange host is in the table:\n${out}`);
  assert.match(line, /2016 CU19/); // the table names the edition and CU (product ids stay in JSONL/CSV)
  assert.match(line, /15\.1\.2176\.9/);
});
