/**
 * A small ZIP reader over node:zlib: reads the central directory (ZIP64 included), then streams one
 * member at a time (stored or deflate) straight from the archive file, so memory stays bounded.
 * Names are only used as labels (we never write files), so "zip slip" names are harmless here; they
 * are still normalised to `/` separators and shown as given. Sizes are capped: a member that inflates
 * beyond its declared size (a zip bomb, or a lying header) is cut off there and reported.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInflateRaw } from 'node:zlib';

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
  /** ISO time from the DOS date/time fields (local time of the zipping machine, read as UTC). */
  readonly mtime: string | null;
  readonly isDirectory: boolean;
}

export class ZipFormatError extends Error {}

const MAX_ENTRIES = 1_000_000;
const MAX_CD_BYTES = 256 * 1024 * 1024;

function dosTime(date: number, time: number): string | null {
  if (date === 0) return null;
  const y = 1980 + (date >> 9);
  const mo = (date >> 5) & 15;
  const d = date & 31;
  const t = Date.UTC(y, mo - 1, d, time >> 11, (time >> 5) & 63, (time & 31) * 2);
  return Number.isFinite(t) && mo >= 1 && mo <= 12 && d >= 1 ? new Date(t).toISOString() : null;
}

/** Reads the central directory of the ZIP file at `path`. Throws ZipFormatError for a broken archive. */
export async function readZipDirectory(path: string): Promise<ZipEntry[]> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const tailLen = Math.min(size, 65_557);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd === -1) throw new ZipFormatError('no end-of-central-directory record (not a ZIP file, or truncated)');
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || tail.readUInt32LE(loc) !== 0x07064b50) throw new ZipFormatError('ZIP64 locator missing');
      const recOff = Number(tail.readBigUInt64LE(loc + 8));
      const rec = Buffer.alloc(56);
      await fh.read(rec, 0, 56, recOff);
      if (rec.readUInt32LE(0) !== 0x06064b50) throw new ZipFormatError('ZIP64 end record missing');
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    if (count > MAX_ENTRIES || cdSize > MAX_CD_BYTES || cdOffset + cdSize > size) {
      throw new ZipFormatError(`central directory out of bounds (${count} entries, ${cdSize} bytes)`);
    }
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new ZipFormatError(`bad central directory entry #${i + 1}`);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const time = cd.readUInt16LE(p + 12);
      const date = cd.readUInt16LE(p + 14);
      let csize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let local = cd.readUInt32LE(p + 42);
      const nameBuf = cd.subarray(p + 46, p + 46 + nameLen);
      const name = nameBuf.toString(flags & 0x800 ? 'utf8' : 'latin1').replace(/\\/g, '/');
      // ZIP64 extra field: the 64-bit values of the fields that are saturated, in this order.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (usize === 0xffffffff && q + 8 <= e + 4 + len) {
            usize = Number(cd.readBigUInt64LE(q));
            q += 8;
          }
          if (csize === 0xffffffff && q + 8 <= e + 4 + len) {
            csize = Number(cd.readBigUInt64LE(q));
            q += 8;
          }
          if (local === 0xffffffff && q + 8 <= e + 4 + len) local = Number(cd.readBigUInt64LE(q));
        }
        e += 4 + len;
      }
      entries.push({
        name,
        method,
        flags,
        compressedSize: csize,
        size: usize,
        localOffset: local,
        mtime: dosTime(date, time),
        isDirectory: name.endsWith('/'),
      });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return entries;
  } finally {
    await fh.close();
  }
}

/** Why a member cannot be read, or null if it can. */
export function unsupportedReason(e: ZipEntry): string | null {
  if (e.flags & 1) return 'encrypted member';
  if (e.method !== 0 && e.method !== 8) return `compression method ${e.method} not supported (use stored or deflate)`;
  return null;
}

/**
 * Streams one member's uncompressed bytes. Output beyond the declared size is cut off and
 * `onOverflow` is called (the declared size is the cap; a zip bomb cannot exhaust memory or time).
 */
export async function* openZipEntry(path: string, e: ZipEntry, onOverflow: () => void): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  let dataStart: number;
  try {
    const lh = Buffer.alloc(30);
    await fh.read(lh, 0, 30, e.localOffset);
    if (lh.readUInt32LE(0) !== 0x04034b50) throw new ZipFormatError(`bad local header for ${e.name}`);
    dataStart = e.localOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
  } finally {
    await fh.close();
  }
  if (e.compressedSize === 0) return;
  const raw = createReadStream(path, { start: dataStart, end: dataStart + e.compressedSize - 1, highWaterMark: 1 << 20 });
  let src: AsyncIterable<Buffer> = raw;
  if (e.method === 8) {
    const inflater = createInflateRaw({ chunkSize: 1 << 20 });
    raw.on('error', (err) => inflater.destroy(err));
    raw.pipe(inflater);
    src = inflater;
  }
  let n = 0;
  try {
    for await (const chunk of src) {
      const c = chunk as Buffer;
      n += c.length;
      if (n > e.size) {
        const keep = c.length - (n - e.size);
        if (keep > 0) yield c.subarray(0, keep);
        onOverflow();
        return;
      }
      yield c;
    }
  } finally {
    raw.destroy();
  }
}
