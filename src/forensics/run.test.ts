import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTocsinError, TocsinError } from '../core/errors.js';
import { forensicsError, runForensics } from './run.js';

test('forensics errors keep the kit\'s exit code 2: a bug is TOCSIN_FORENSICS_INTERNAL, not 70', () => {
  const bug = forensicsError(new TypeError("Cannot read properties of undefined (reading 'x')"));
  assert.ok(isTocsinError(bug));
  assert.equal(bug.code, 'TOCSIN_FORENSICS_INTERNAL');
  assert.equal(bug.exitCode, 2);
  assert.match(bug.message, /TypeError: Cannot read properties/);
  assert.ok(bug.details.length > 0 && bug.details.length <= 8, 'the first stack frames, for the bug report');

  const fsError = Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: 'EACCES', syscall: 'open', path: '/x' });
  const input = forensicsError(fsError);
  assert.ok(isTocsinError(input));
  assert.equal(input.code, 'TOCSIN_FORENSICS_INPUT');
  assert.equal(input.exitCode, 2);

  const coded = new TocsinError('TOCSIN_FORENSICS_INPUT', 'x');
  assert.equal(forensicsError(coded), coded);
  const pipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' });
  assert.equal(forensicsError(pipe), pipe, 'a closed stdout is left to the entry point');
});

test('runForensics rejects only with coded errors that exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-run-'));
  try {
    const io = { stdout: { write: () => true }, stderr: { write: () => true } };
    await assert.rejects(runForensics({ paths: [join(dir, 'missing')] }, io), (e: unknown) => isTocsinError(e) && e.code === 'TOCSIN_FORENSICS_INPUT' && e.exitCode === 2);
    // an output whose folder is missing
    await assert.rejects(
      runForensics({ paths: [dir], output: join(dir, 'no', 'out.csv') }, io),
      (e: unknown) => isTocsinError(e) && e.exitCode === 2 && /cannot write/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
