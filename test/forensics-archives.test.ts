/**
 * The same fixture tree read from a .zip (Windows-style member names) and a log read from a .gz:
 * the same traces, shown as archive!/member, with the same line numbers. Hostile archives are
 * reported and skipped without stopping the run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { analyze } from '../src/forensics/analyze.js';
import { makeZip, type ZipMember } from './fixtures/forensics/make-zip.js';

const TREE = fileURLToPath(new URL('./fixtures/forensics/server1', import.meta.url));

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

test('a .zip of the tree (backslash member names) yields the same findings as the folder', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-forensics-zip-'));
  try {
    const members: ZipMember[] = walk(TREE).map((p, i) => ({
      name: relative(TREE, p).split(/[\\/]/).join('\\'),
      data: readFileSync(p),
      method: i % 2 === 0 ? 8 : 0,
    }));
    const zip = join(tmp, 'server1-logs.zip');
    writeFileSync(zip, makeZip(members));
    const fromDir = await analyze({ paths: [TREE] });
    const fromZip = await analyze({ paths: [zip] });
    const norm = (file: string, base: string): string => file.slice(base.length).replace(/\\/g, '/').replace(/^!?\//, '');
    const a = fromDir.findings.map((f) => `${f.check} ${norm(f.file, TREE)}:${f.line} ${f.cve}`).sort();
    const b = fromZip.findings.map((f) => `${f.check} ${norm(f.file, zip)}:${f.line} ${f.cve}`).sort();
    assert.deepEqual(b, a);
    assert.ok(fromZip.findings.every((f) => f.file.startsWith(`${zip}!/`)));
    assert.equal(fromZip.verdict, 'indicators-found');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a .gz log is read as a stream with the kind of the name without .gz', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-forensics-gz-'));
  try {
    const dir = join(tmp, 'W3SVC1');
    mkdirSync(dir);
    writeFileSync(join(dir, 'u_ex210303.log.gz'), gzipSync(readFileSync(join(TREE, 'inetpub/logs/LogFiles/W3SVC1/u_ex210303.log'))));
    const r = await analyze({ paths: [tmp] });
    assert.deepEqual(
      r.findings.map((f) => [f.check, f.line]),
      [
        ['webshell-request', 8],
        ['proxylogon-static-post', 9],
        ['cve-2020-0688-viewstate', 10],
        ['proxytoken-inbox-rule', 11],
        ['webshell-request', 12],
        ['webshell-probe', 13],
        ['proxylogon-static-post', 18],
      ],
    );
    assert.equal(r.coverage[0]?.kind, 'iis-w3c');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('hostile archives: a bomb member is cut off, encrypted and nested members are skipped, a broken zip is an error', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-forensics-bad-'));
  try {
    const line = '2021-03-03 07:30:11 10.0.0.5 GET /owa/auth/RedirSuiteServerProxy.aspx - 443 - 198.51.100.7 UA - 200 0 0 31\r\n';
    const hdr = '#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n';
    const body = Buffer.from(hdr + line + 'x'.repeat(3_000_000) + '\r\n' + line);
    writeFileSync(
      join(tmp, 'bad.zip'),
      makeZip([
        { name: 'W3SVC1/u_ex1.log', data: body, declaredSize: hdr.length + line.length + 100 },
        { name: 'secret.log', data: Buffer.from('x'), encrypted: true },
        { name: 'inner.zip', data: Buffer.from('PK'), method: 0 },
      ]),
    );
    writeFileSync(join(tmp, 'broken.zip'), Buffer.from('PK\u0003\u0004 not really'));
    const r = await analyze({ paths: [tmp] });
    // Only the line before the cut-off point is seen.
    assert.deepEqual(r.findings.map((f) => [f.check, f.line]), [['webshell-request', 3]]);
    const msgs = r.notices.map((n) => `${n.level} ${n.message}`).join('\n');
    assert.match(msgs, /inflates beyond its declared size/);
    assert.match(msgs, /error encrypted member/);
    assert.match(msgs, /nested ZIP archive not opened/);
    assert.match(msgs, /error cannot read ZIP archive/);
    assert.equal(r.hadErrors, true);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a UTF-16LE export (PowerShell Out-File, Event Viewer) is re-encoded and read', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-forensics-utf16-'));
  try {
    const xml = readFileSync(join(TREE, 'exports/Application-Exchange.xml'), 'utf8');
    writeFileSync(join(tmp, 'app.xml'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(xml, 'utf16le')]));
    const r = await analyze({ paths: [tmp] });
    assert.deepEqual(r.findings.map((f) => [f.check, f.line, f.time]), [
      ['proxylogon-um-invalidcast', 3, '2021-03-03T07:12:01.000Z'],
      ['proxylogon-um-invalidcast', 4, '2021-03-03T07:40:00.000Z'],
    ]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('binary files with a log name are not scanned as text; EVTX gets an export hint', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tocsin-forensics-bin-'));
  try {
    const ese = Buffer.alloc(8192);
    ese.write('ServerInfo~a]@x:444/ecp/y?#', 100, 'latin1'); // would be a candidate if read as text
    writeFileSync(join(tmp, 'E00000001A.log'), ese);
    writeFileSync(join(tmp, 'Application.evtx'), Buffer.concat([Buffer.from('ElfFile\0'), Buffer.alloc(4096)]));
    const r = await analyze({ paths: [tmp] });
    assert.deepEqual(r.findings, []);
    assert.equal(r.stats.logFiles, 0);
    assert.deepEqual(r.notices.map((n) => /wevtutil qe Application/.test(n.message)), [true, false]);
    // Neither is a log the kit reads: no verdict can rest on them (exit code 2), and a notice says so.
    assert.equal(r.verdict, 'no-logs');
    assert.match(r.notices[1]!.message, /no Exchange or IIS log found/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
