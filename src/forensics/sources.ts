/**
 * Expands the command-line paths into readable inputs: files, directories (walked in sorted order,
 * symbolic links not followed), `.gz` files (gunzipped as a stream), and `.zip` archives (each member
 * an input, shown as `archive.zip!/member`). Decompression is capped (see GZ_MAX_RATIO and zip.ts).
 */
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { openZipEntry, readZipDirectory, unsupportedReason } from './zip.js';
import type { Notice } from './types.js';

export interface Source {
  /** Shown in records and notices. */
  readonly display: string;
  /** Used to recognise the kind (display without a trailing .gz). */
  readonly kindPath: string;
  /** Bytes on disk (compressed size for archive members), for progress. */
  readonly size: number;
  readonly mtime: string | null;
  open(): AsyncIterable<Buffer>;
}

/** A gzip stream may inflate to at most this many times its size plus 1 GiB (logs compress ~10-30x). */
export const GZ_MAX_RATIO = 200;

const CHUNK = 1 << 20;

async function* capped(src: AsyncIterable<Buffer>, max: number, onOverflow: () => void): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of src) {
    n += c.length;
    if (n > max) {
      const keep = c.length - (n - max);
      if (keep > 0) yield c.subarray(0, keep);
      onOverflow();
      return;
    }
    yield c;
  }
}

function gunzipOf(src: AsyncIterable<Buffer>, label: string, compressedSize: number, notice: (n: Notice) => void): AsyncIterable<Buffer> {
  const gz = createGunzip({ chunkSize: CHUNK });
  // Feed the gunzip stream from an async iterable without buffering more than the stream's highWaterMark.
  void (async () => {
    try {
      for await (const c of src) {
        if (!gz.write(c)) await new Promise<void>((r) => gz.once('drain', r));
        if (gz.destroyed) return;
      }
      gz.end();
    } catch (e: unknown) {
      gz.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  })();
  const max = compressedSize * GZ_MAX_RATIO + 1024 * 1024 * 1024;
  return capped(gz as AsyncIterable<Buffer>, max, () =>
    notice({ level: 'warning', file: label, line: null, message: `decompressed output exceeds ${GZ_MAX_RATIO}x the archive size; the rest was not read` }),
  );
}

function fileSource(path: string, display: string, st: Stats, notice: (n: Notice) => void): Source[] {
  const lower = path.toLowerCase();
  if (lower.endsWith('.gz')) {
    return [
      {
        display,
        kindPath: display.slice(0, -3),
        size: st.size,
        mtime: st.mtime.toISOString(),
        open: () => gunzipOf(createReadStream(path, { highWaterMark: CHUNK }), display, st.size, notice),
      },
    ];
  }
  return [{ display, kindPath: display, size: st.size, mtime: st.mtime.toISOString(), open: () => createReadStream(path, { highWaterMark: CHUNK }) }];
}

async function* zipSources(path: string, display: string, notice: (n: Notice) => void): AsyncGenerator<Source> {
  let entries;
  try {
    entries = await readZipDirectory(path);
  } catch (e: unknown) {
    notice({ level: 'error', file: display, line: null, message: `cannot read ZIP archive: ${e instanceof Error ? e.message : String(e)}` });
    return;
  }
  for (const e of entries) {
    if (e.isDirectory) continue;
    const label = `${display}!/${e.name}`;
    const why = unsupportedReason(e);
    if (why !== null) {
      notice({ level: 'error', file: label, line: null, message: `${why}; member skipped` });
      continue;
    }
    const lower = e.name.toLowerCase();
    if (lower.endsWith('.zip')) {
      notice({ level: 'warning', file: label, line: null, message: 'nested ZIP archive not opened; extract it and pass it separately' });
      continue;
    }
    const overflow = (): void =>
      notice({ level: 'warning', file: label, line: null, message: 'member inflates beyond its declared size; cut off there' });
    const raw = (): AsyncIterable<Buffer> => openZipEntry(path, e, overflow);
    if (lower.endsWith('.gz')) {
      yield { display: label, kindPath: label.slice(0, -3), size: e.compressedSize, mtime: e.mtime, open: () => gunzipOf(raw(), label, e.size, notice) };
    } else {
      yield { display: label, kindPath: label, size: e.compressedSize, mtime: e.mtime, open: raw };
    }
  }
}

/**
 * Yields every input below `paths`. A path that does not exist is reported as an error notice;
 * the caller decides whether that is fatal (the CLI checks paths up front).
 */
export async function* expandInputs(paths: readonly string[], notice: (n: Notice) => void): AsyncGenerator<Source> {
  for (const p of paths) yield* expandOne(p, p, notice);
}

async function* expandOne(path: string, display: string, notice: (n: Notice) => void): AsyncGenerator<Source> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (e: unknown) {
    notice({ level: 'error', file: display, line: null, message: `cannot read: ${e instanceof Error ? e.message : String(e)}` });
    return;
  }
  if (st.isSymbolicLink()) {
    notice({ level: 'warning', file: display, line: null, message: 'symbolic link not followed' });
    return;
  }
  if (st.isDirectory()) {
    let names: string[];
    try {
      names = (await readdir(path)).sort();
    } catch (e: unknown) {
      notice({ level: 'error', file: display, line: null, message: `cannot list directory: ${e instanceof Error ? e.message : String(e)}` });
      return;
    }
    for (const n of names) yield* expandOne(join(path, n), join(display, n), notice);
    return;
  }
  if (!st.isFile()) return;
  if (path.toLowerCase().endsWith('.zip')) {
    yield* zipSources(path, display, notice);
    return;
  }
  yield* fileSource(path, display, st, notice);
}
