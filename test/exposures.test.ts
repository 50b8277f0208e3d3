/**
 * `tocsin exposures` on both backends, with data built by the real services: a constituency import (nested
 * networks, an organisation whose name starts with '='), a Shadowserver scan_exchange report through the feed
 * import, scan observations through the scan store, and the attribution brought up to date by
 * refreshAttributions (called by the exposures service itself). Checks: an address seen by our scan and by
 * Shadowserver is ONE record with sources ["scan","shadowserver"] and the scan's newer exact build; --cve, --org
 * (case-insensitive; unknown name -> TOCSIN_ORG_NOT_FOUND), --source, --unattributed (org null); keyset pages of
 * one key give the same records; CSV cells starting with '=' are neutralised; the table is sanitised.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { csvRow } from '../src/core/csv.js';
import { isTocsinError } from '../src/core/errors.js';
import { exposureFilter, type ExposureRecord } from '../src/services/exposures.js';
import { csvCells, tableCells } from '../src/cli/exposures.js';
import { testEachBackend } from './helpers/db.js';
import { buildEstate, collect } from './helpers/exposures-estate.js';
import { cliEntry, ROOT, runCli } from './helpers/independent-estate/cli.js';

const key = (r: ExposureRecord): string => `${r.ip}:${r.port ?? '-'}`;

testEachBackend('exposures: one record per ip:port merging scan and Shadowserver, with its organisation and rule', async ({ database }) => {
  await buildEstate(database);
  const all = await collect(database);
  assert.deepEqual(all.map(key), ['192.0.2.11:443', '192.0.2.70:443', '198.51.100.7:443', '203.0.113.5:443', '2001:db8:100::25:443']);

  const merged = all.find((r) => r.ip === '192.0.2.70');
  assert.ok(merged);
  assert.deepEqual(merged.sources, ['scan', 'shadowserver']);
  // The scan's exact build is newer than the feed's CU-precision one: its build and verdicts win.
  assert.equal(merged.build, '15.1.2176.9');
  assert.equal(merged.buildPrecision, 'exact');
  assert.deepEqual(merged.vulnerable, ['CVE-2021-26855', 'CVE-2021-34473']);
  // What the feed claimed is kept beside our verdicts.
  assert.deepEqual(merged.reportedCves, ['CVE-2021-26855', 'CVE-2021-27065']);
  assert.equal(merged.hostname, 'mail.customer.example');
  // The customer's /26 inside the ISP's /24: the customer, by the network rule.
  assert.equal(merged.org, 'Customer GmbH');
  assert.equal(merged.rule, 'network');
  assert.equal(merged.sector, 'health');
  assert.ok(merged.orgId !== null && merged.confidence !== null && merged.confidence > 0);
  assert.ok(merged.attributionEvidence !== null);
  assert.equal(merged.firstSeen, '2024-06-10T08:00:00.000Z');
  assert.equal(merged.lastSeen, '2026-03-02T10:00:00.000Z');

  const shell = all.find((r) => r.ip === '192.0.2.11');
  assert.deepEqual(shell?.sources, ['shadowserver']);
  assert.equal(shell?.compromised, true);
  assert.equal(shell?.org, 'Example ISP');
  assert.equal(shell?.buildPrecision, 'cu');
  assert.equal(all.filter((r) => r.compromised).length, 1, 'only the webshell row is compromised');

  const scanOnly = all.find((r) => r.ip === '198.51.100.7');
  assert.deepEqual(scanOnly?.sources, ['scan']);
  assert.deepEqual(scanOnly?.reportedCves, []);
  assert.equal(scanOnly?.org, '=Evil Org');

  const v6 = all.find((r) => r.ip === '2001:db8:100::25');
  assert.equal(v6?.org, 'Example ISP');

  // The same records whatever the page size (keyset walk over both tables).
  assert.deepEqual(await collect(database, {}, 1), all);
  assert.deepEqual(await collect(database, {}, 2), all);
});

testEachBackend('exposures: --cve, --org, --source, --sector and --unattributed narrow the records', async ({ database }) => {
  await buildEstate(database);
  // Vulnerable (scan verdict), or reported by the feed (203.0.113.5 claims it; its KB verdict may say so too).
  const logon = await collect(database, { cve: 'cve-2021-26855' });
  assert.ok(logon.every((r) => r.vulnerable.includes('CVE-2021-26855') || r.indeterminate.includes('CVE-2021-26855') || r.reportedCves.includes('CVE-2021-26855')));
  for (const k of ['192.0.2.70:443', '198.51.100.7:443', '203.0.113.5:443']) assert.ok(logon.map(key).includes(k), `${k} in --cve`);
  // Only reported by the feed, not vulnerable per our newer scan: still listed (the feed claims it).
  assert.deepEqual((await collect(database, { cve: 'CVE-2021-27065' })).map(key).filter((k) => k.startsWith('192.0.2.70')), ['192.0.2.70:443']);
  assert.deepEqual(await collect(database, { cve: 'CVE-1999-0001' }), []);

  const customer = await collect(database, { org: 'customer gmbh' });
  assert.deepEqual(customer.map(key), ['192.0.2.70:443']);
  assert.ok(customer.every((r) => r.org === 'Customer GmbH'));
  const isp = await collect(database, { org: 'EXAMPLE ISP' });
  assert.deepEqual(isp.map(key), ['192.0.2.11:443', '2001:db8:100::25:443']);
  await assert.rejects(collect(database, { org: 'Nobody Ltd' }), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_ORG_NOT_FOUND');

  assert.deepEqual((await collect(database, { source: 'scan' })).map(key), ['192.0.2.70:443', '198.51.100.7:443']);
  assert.deepEqual((await collect(database, { source: 'feed' })).map(key), ['192.0.2.11:443', '192.0.2.70:443', '203.0.113.5:443', '2001:db8:100::25:443']);
  assert.deepEqual((await collect(database, { source: 'nmap' })).map(key), []);

  assert.deepEqual((await collect(database, { sector: 'Health' })).map(key), ['192.0.2.70:443', '198.51.100.7:443']);

  const un = await collect(database, { unattributed: true });
  assert.deepEqual(un.map(key), ['203.0.113.5:443']);
  assert.equal(un[0]?.org, null);
  assert.equal(un[0]?.orgId, null);
  assert.equal(un[0]?.rule, null);
  assert.equal(un[0]?.confidence, null);

  assert.throws(() => exposureFilter({ cve: 'proxylogon' }), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_ARG_INVALID');
  assert.throws(() => exposureFilter({ unattributed: true, org: 'x' }), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_ARG_INVALID');
});

testEachBackend('exposures: CSV cells that a spreadsheet would run are neutralised; the table is sanitised', async ({ database }) => {
  await buildEstate(database);
  const all = await collect(database);
  const evil = all.find((r) => r.org === '=Evil Org');
  assert.ok(evil);
  const line = csvRow(csvCells(evil));
  assert.ok(line.includes(",'=Evil Org,"), line);
  assert.ok(!/(^|,)=/.test(line), line);
  const hostile = all.find((r) => r.ip === '203.0.113.5');
  assert.equal(hostile?.hostname, '=HYPERLINK("http://evil.example")');
  assert.ok(hostile !== undefined && csvRow(csvCells(hostile)).includes('"\'=HYPERLINK(""http://evil.example"")"'));
  // A control character in stored text (an organisation name can't hold one; a feed's build text could) never reaches the terminal.
  const cells = tableCells({ ...evil, build: '15.1\u001b[2J', org: 'A\u202eB' });
  assert.ok(cells.every((c) => !/[\u0000-\u001f\u202e]/.test(c)), JSON.stringify(cells));
});

testEachBackend('tocsin exposures and report --by through the CLI: jsonl, a coded error, a closed stdout', async ({ database, url }) => {
  await buildEstate(database);
  const home = mkdtempSync(join(tmpdir(), 'tocsin-exposures-cli-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  try {
    const jsonl = await runCli(['exposures', '--format', 'jsonl', '--source', 'scan'], env, 120_000);
    assert.equal(jsonl.code, 0, jsonl.stderr.toString());
    const recs = jsonl.stdout.toString().trim().split('\n').map((l) => JSON.parse(l) as ExposureRecord);
    assert.deepEqual(recs.map(key), ['192.0.2.70:443', '198.51.100.7:443']);
    assert.deepEqual(recs[0]?.sources, ['scan', 'shadowserver']);
    assert.match(jsonl.stderr.toString(), /tocsin: 2 exposure record\(s\)/);

    const unknown = await runCli(['exposures', '--org', 'Nobody Ltd'], env, 120_000);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr.toString(), /TOCSIN_ORG_NOT_FOUND/);
    assert.equal(unknown.stdout.toString(), '');

    const bySector = await runCli(['report', '--by', 'sector', '--format', 'csv'], env, 120_000);
    assert.equal(bySector.code, 0, bySector.stderr.toString());
    assert.match(bySector.stdout.toString(), /^true,,,health,2,2,2,2,/m);

    // `tocsin exposures | head -1` with a reader gone before the first record: a clean stop (141, no stack trace).
    const entry = cliEntry();
    const gone = spawn(process.execPath, [...entry.nodeArgs, 'exposures'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    gone.stdout.destroy();
    let goneErr = '';
    gone.stderr.on('data', (c: Buffer) => (goneErr += c.toString('utf8')));
    const goneCode = await new Promise<number | null>((res) => gone.on('close', (code) => res(code)));
    assert.equal(goneCode, 141, goneErr);
    assert.doesNotMatch(goneErr, /\n\s+at |TOCSIN_INTERNAL/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
