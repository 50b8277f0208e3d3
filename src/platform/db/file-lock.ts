/**
 * A cross-process lock on a file: created with O_EXCL and holding the holder's pid. A lock whose holder
 * died is broken; an empty one (the holder between open and write, or dead there) only when clearly old.
 * Between processes only: callers serialise their own work inside one process.
 */
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errno } from '../../core/errors.js';
import { ensureDir } from '../paths.js';
import { ignoreMissing, isAlive } from './os.js';

export interface FileLockOptions {
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** The error to throw on timeout, given the holder's pid (null when the file named none). */
  readonly onTimeout: (holder: number | null) => Error;
  /** An empty lock file older than this is broken (default 10 s). */
  readonly staleEmptyMs?: number;
}

/** Runs `fn` holding `lockFile` (its folder is created if missing); the lock is removed afterwards. */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T>, opts: FileLockOptions): Promise<T> {
  await ensureDir(dirname(lockFile));
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    let fh;
    try {
      fh = await open(lockFile, 'wx', 0o644);
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
    }
    if (fh !== undefined) {
      try {
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        break;
      } catch (e) {
        // A full disk: the empty lock file must not stay (every later start would wait for it), and the
        // error to report is this one (ENOSPC → "disk full at ...").
        await fh.close().catch(() => undefined);
        await unlink(lockFile).catch(() => undefined);
        throw e;
      }
    }
    const holder = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0) {
      if (!isAlive(holder)) await breakStaleLock(lockFile, String(holder));
    } else {
      const s = await stat(lockFile).catch(() => null);
      if (s !== null && Date.now() - s.mtimeMs > (opts.staleEmptyMs ?? 10_000)) await breakStaleLock(lockFile, '');
    }
    if (Date.now() > deadline) throw opts.onTimeout(Number.isInteger(holder) && holder > 0 ? holder : null);
    await sleep(25 + Math.floor(Math.random() * 25));
  }
  try {
    return await fn();
  } finally {
    await unlink(lockFile).catch(ignoreMissing);
  }
}

async function breakStaleLock(lockFile: string, expected: string): Promise<void> {
  // Re-read just before removing, so a lock freshly taken by a live process is not broken.
  const now = (await readFile(lockFile, 'utf8').catch(() => null))?.trim();
  if (now === expected) await unlink(lockFile).catch(ignoreMissing);
}
