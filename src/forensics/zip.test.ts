import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeZip } from '../../test/fixtures/forensics/make-zip.js';
import { openZipEntry, readZipDirectory, unsupportedReason, ZipFormatError } from './zip.js';

async function readAll(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

test('reads stored and deflated members through the central directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-zip-'));
  try {
    const big = Buffer.from('2021-03-03T06:49:42Z,line\r\n'.repeat(50_000));
    const p = join(dir, 'a.zip');
    writeFileSync(p, makeZip([
      { name: 'Logging\\HttpProxy\\Ecp\\a.LOG', data: big, method: 8 },
      { name: 'dir/', data: Buffer.alloc(0), method: 0 },
      { name: 'b.txt', data: Buffer.from('hello'), method: 0 },
    ]));
    const entries = await readZipDirectory(p);
    assert.deepEqual(entries.map((e) => [e.name, e.size, e.isDirectory]), [
      ['Logging/HttpProxy/Ecp/a.LOG', big.length, false],
      ['dir/', 0, true],
      ['b.txt', 5, false],
    ]);
    assert.equal(entries[0]!.mtime, '2021-03-03T00:00:00.000Z');
    let overflow = 0;
    assert.deepEqual(await readAll(openZipEntry(p, entries[0]!, () => overflow++)), big);
    assert.equal((await readAll(openZipEntry(p, entries[2]!, () => overflow++))).toString(), 'hello');
    assert.equal(overflow, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a member inflating beyond its declared size is cut off there (zip bomb defence)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-zip-'));
  try {
    const p = join(dir, 'bomb.zip');
    writeFileSync(p, makeZip([{ name: 'x.log', data: Buffer.alloc(5_000_000, 0x41), declaredSize: 1000 }]));
    const [e] = await readZipDirectory(p);
    let overflow = 0;
    const out = await readAll(openZipEntry(p, e!, () => overflow++));
    assert.equal(out.length, 1000);
    assert.equal(overflow, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encrypted members and unknown methods are refused; garbage is not a ZIP', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-zip-'));
  try {
    const p = join(dir, 'enc.zip');
    writeFileSync(p, makeZip([{ name: 'x.log', data: Buffer.from('x'), encrypted: true }]));
    const [e] = await readZipDirectory(p);
    assert.equal(unsupportedReason(e!), 'encrypted member');
    assert.match(unsupportedReason({ ...e!, flags: 0, method: 9 }) ?? '', /method 9/);
    const g = join(dir, 'garbage.zip');
    writeFileSync(g, Buffer.from('not a zip at all'.repeat(10)));
    await assert.rejects(readZipDirectory(g), ZipFormatError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
