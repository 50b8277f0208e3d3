/**
 * `tocsin attribution` and the stored side of `tocsin whois` end to end through the CLI, on both backends:
 * refresh prints its summary, review lists the unattributed (table and JSON Lines, --limit) and stops quietly on a
 * closed pipe, assign creates a manual entry (test/attribution-store.test.ts checks it leaves the queue) (an unknown organisation is a coded error), whois shows the stored
 * facts, the stored answer and the owner change, and a prefix table reports its bad lines with their numbers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEntry, ROOT } from './helpers/independent-estate/cli.js';
import { testEachBackend } from './helpers/db.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI; with `firstLineOnly` the reader goes away after the first line of stdout (`| head -1`). */
function tocsin(args: readonly string[], env: Readonly<Record<string, string>>, opts: { stdin?: string; firstLineOnly?: boolean } = {}): Promise<Run> {
  const entry = cliEntry();
  const child = spawn(process.execPath, [...entry.nodeArgs, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString('utf8');
    if (opts.firstLineOnly === true && out.includes('\n')) child.stdout.destroy();
  });
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  child.stdin.end(opts.stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
}

const CONSTITUENCY = [
  'organisation,sector,networks,asns,domains,contact',
  'Example ISP,telecom,192.0.2.0/24,,,abuse@isp.example',
  'Domain Only GmbH,retail,,,example.org,',
  'Prefix AG,other,,AS64999,,',
].join('\n');

const REPORT = [
  '"timestamp","ip","protocol","port","hostname","tag","asn","version"',
  '"2024-06-03 01:02:03","192.0.2.10","tcp",443,"mail.example.org","exchange",64500,"15.1.2176"',
  '"2024-06-03 01:02:06","203.0.113.77","tcp",8443,"x.unknown.test","exchange",64510,"15.2.1118"',
].join('\n');

testEachBackend('tocsin attribution refresh / review / assign / prefixes import and whois through the CLI', async ({ url }) => {
  const home = mkdtempSync(join(tmpdir(), 'tocsin-attr-cli-'));
  const env = { TOCSIN_HOME: home, TOCSIN_DATABASE_URL: url };
  try {
    writeFileSync(join(home, 'orgs.csv'), `${CONSTITUENCY}\n`);
    writeFileSync(join(home, '2024-06-03-scan_exchange-cli.csv'), `${REPORT}\n`);
    assert.equal((await tocsin(['constituency', 'import', join(home, 'orgs.csv')], env)).code, 0);
    assert.equal((await tocsin(['feeds', 'import', join(home, '2024-06-03-scan_exchange-cli.csv')], env)).code, 0);
    // 1,500 open ports nobody owns: enough review output (about 300 KB) to fill a pipe.
    const sweep = Array.from({ length: 1500 }, (_, i) => `open tcp 443 10.9.${Math.floor(i / 250)}.${i % 250} 1717376400`).join('\n');
    const s = await tocsin(['feeds', 'import', '-', '--format', 'masscan'], env, { stdin: `${sweep}\n` });
    assert.equal(s.code, 0, s.stderr);

    const refresh = await tocsin(['attribution', 'refresh'], env);
    assert.equal(refresh.code, 0, refresh.stderr);
    assert.match(refresh.stdout, /^refreshed {4}registry revision \d+: 1502 address\(es\) computed, 1 attributed, 1501 unattributed, 0 changed owner/m);

    const five = await tocsin(['attribution', 'review', '--format', 'jsonl', '--limit', '5'], env);
    assert.equal(five.code, 0, five.stderr);
    const lines = five.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ip: string; kind: string; ports: number[]; feedAsn: number | null; hostnames: string[] });
    assert.equal(lines.length, 5);
    assert.deepEqual(lines[0], { ...lines[0], ip: '10.9.0.0', kind: 'unattributed', ports: [443], feedAsn: null });
    const table = await tocsin(['attribution', 'review'], env);
    assert.match(table.stdout, /^203\.0\.113\.77 +unattributed +8443 +AS64510 +2024-06-03T01:02:06 .* x\.unknown\.test$/m);

    // A closed pipe stops the listing without a stack trace (141 = 128 + SIGPIPE, as every command).
    const head = await tocsin(['attribution', 'review', '--format', 'jsonl'], env, { firstLineOnly: true });
    assert.equal(head.code, 141, head.stderr);
    assert.doesNotMatch(head.stderr, /\n\s+at |EPIPE|TOCSIN_INTERNAL/);
    assert.match(head.stdout, /^\{"ip":"10\.9\.0\.0"/);

    const assign = await tocsin(['attribution', 'assign', '203.0.113.77', '--org', 'Domain Only GmbH', '--note', 'phoned them', '--as', 'alice'], env);
    assert.equal(assign.code, 0, assign.stderr);
    assert.match(assign.stdout, /^assigned {5}203\.0\.113\.77\/32 to Domain Only GmbH \(id \d+\) by alice at /m);
    assert.match(assign.stdout, /^rule {9}manual, confidence 1\.00$/m);
    assert.match(assign.stdout, /1 changed owner/);
    const unknown = await tocsin(['attribution', 'assign', '10.9.0.1', '--org', 'Nobody'], env);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /TOCSIN_ORG_NOT_FOUND: no organisation named "Nobody"/);

    const whois = await tocsin(['whois', '203.0.113.77'], env);
    assert.equal(whois.code, 0, whois.stderr);
    assert.match(whois.stdout, /^facts {8}from stored observations and flags, ASN 64510, names x\.unknown\.test$/m);
    assert.match(whois.stdout, /^stored {7}Domain Only GmbH by manual, registry revision \d+/m);
    assert.match(whois.stdout, /^changed {6}\S+: none -> Domain Only GmbH \(manual\)/m);

    writeFileSync(join(home, 'rib.txt'), '# prefix ASN\n10.9.0.0/24 64999\nnot a prefix\n10.9.1.0/24,AS64999\n');
    const prefixes = await tocsin(['attribution', 'prefixes', 'import', join(home, 'rib.txt'), '--source', 'rib'], env);
    assert.equal(prefixes.code, 0, prefixes.stderr);
    assert.match(prefixes.stderr, /rib\.txt:3: expected "PREFIX ASN".* \(skipped\)/);
    assert.match(prefixes.stdout, /source rib: 2 row\(s\) read, 2 added, 0 changed, 0 removed, 1 bad line\(s\) skipped/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
