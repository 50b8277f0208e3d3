/**
 * Raw probe responses as content-addressed blobs (table `raw_responses`, migration 0004), so that a stored
 * observation can be replayed: its detectors and fingerprint run again, offline, over the very responses the
 * probe client returned.
 *
 * A response is stored as TWO blobs, each keyed by the sha256 of its bytes: the head (status line + header
 * block) and the body. Why not one blob of head + body: real servers (and the lab) put per-response values in
 * the head (Date, request-id, X-FEServer, cookies), so whole responses are almost never identical across
 * hosts, while bodies are (the same OWA logon page, IIS 404 page or export tool manifest on thousands of
 * hosts). Measured on a 1,024-host lab scan: see docs/ARCHITECTURE.md §3.
 *
 * Canonical head bytes: the status line, CRLF, then `name: value` CRLF per header in the order the client
 * returned them, then CRLF; latin1 (the client decodes the head as latin1, so every char is one byte). This
 * round-trips exactly because the client's status line and values never hold LF and its names never hold
 * ':' or white space. Anything else (a head a fake client made up) is stored as JSON instead, which starts
 * with '[' and so can never be mistaken for a status line.
 *
 * Caps: the probe client already caps the header section (32 KiB) and the body (256 KiB); storage keeps at
 * most MAX_STORED_BODY_BYTES of a body and MAX_STORED_HEAD_BYTES of a head, and the link row records the cut.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ProbeResponse } from '../../core/contracts/probe.js';

/** Hard cap on the body bytes stored per response (the probe client's own cap is 256 KiB). */
export const MAX_STORED_BODY_BYTES = 128 * 1024;
/** Hard cap on the head bytes stored (the client caps the header section at 32 KiB; this is a backstop). */
export const MAX_STORED_HEAD_BYTES = 40 * 1024;
/** Blobs shorter than this are stored as they are: gzip's own 18 bytes would eat the gain. */
const MIN_COMPRESS_BYTES = 64;

export type BlobEncoding = 'identity' | 'gzip';

/** One blob ready for `raw_responses`. */
export interface PackedBlob {
  /** sha256 of the uncompressed bytes, base64. */
  readonly sha: string;
  readonly encoding: BlobEncoding;
  /** Uncompressed length. */
  readonly size: number;
  readonly data: Buffer;
}

/** How one observation refers to one of its responses (table `observation_responses`). */
export interface ResponseLink {
  readonly probeId: string;
  readonly url: string;
  readonly status: number;
  readonly redirects: readonly string[];
  /** sha256 (base64) of the head and body blobs. */
  readonly head: string;
  readonly body: string;
  /** Body length the probe client returned (before the storage cap). */
  readonly bodyBytes: number;
  /** The probe client cut the body at its own cap (ProbeResponse.truncated). */
  readonly clientTruncated: boolean;
  /** Storage kept only the first MAX_STORED_*_BYTES of the head or body. */
  readonly storedTruncated: boolean;
}

/** A response split into its link and its two blobs (uncompressed), with the storage caps applied. */
export interface SplitResponse {
  readonly link: ResponseLink;
  readonly headBytes: Buffer;
  readonly bodyBytes: Buffer;
}

export interface Caps {
  readonly maxBodyBytes: number;
  readonly maxHeadBytes: number;
}

export const DEFAULT_CAPS: Caps = { maxBodyBytes: MAX_STORED_BODY_BYTES, maxHeadBytes: MAX_STORED_HEAD_BYTES };

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64');
}

/** Canonical head bytes (see the module comment). */
export function encodeHead(statusLine: string, headers: ReadonlyArray<readonly [string, string]>): Buffer {
   
  const wire = !/[\n\u0100-\uffff]/.test(statusLine) && statusLine.startsWith('HTTP/') &&
    headers.every(([k, v]) => k !== '' && !/[\s:\u0100-\uffff]/.test(k) && !/[\n\u0100-\uffff]/.test(v));
  if (!wire) return Buffer.from(JSON.stringify([statusLine, headers]), 'utf8');
  let text = `${statusLine}\r\n`;
  for (const [k, v] of headers) text += `${k}: ${v}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/** Inverse of encodeHead. Throws on bytes encodeHead cannot have made. */
export function decodeHead(bytes: Buffer): { statusLine: string; headers: Array<[string, string]> } {
  if (bytes[0] === 0x5b /* '[' */) {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    if (!Array.isArray(v) || typeof v[0] !== 'string' || !Array.isArray(v[1])) throw new Error('stored head is not [statusLine, headers]');
    const headers = (v[1] as unknown[]).map((h): [string, string] => {
      if (!Array.isArray(h) || typeof h[0] !== 'string' || typeof h[1] !== 'string') throw new Error('stored header is not [name, value]');
      return [h[0], h[1]];
    });
    return { statusLine: v[0], headers };
  }
  const text = bytes.toString('latin1');
  const lines = text.split('\r\n');
  // A head cut by the storage cap has no final empty line: its last, partial line is dropped; every
  // complete line before the cut still counts.
  if (!text.endsWith('\r\n\r\n')) lines.pop();
  const statusLine = lines[0] ?? '';
  const headers: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) break;
    headers.push([line.slice(0, colon), line.slice(colon + 2)]);
  }
  return { statusLine, headers };
}

/** Splits a response into its link and blobs, applying the storage caps. */
export function splitResponse(r: ProbeResponse, caps: Caps = DEFAULT_CAPS): SplitResponse {
  // A response that crossed a worker thread is a Uint8Array, not a Buffer (structured clone): view it, no copy.
  const body = Buffer.isBuffer(r.body) ? r.body : Buffer.from((r.body as Uint8Array).buffer, (r.body as Uint8Array).byteOffset, (r.body as Uint8Array).byteLength);
  let head = encodeHead(r.statusLine, r.headers);
  let cut = false;
  if (head.length > caps.maxHeadBytes) {
    head = head.subarray(0, caps.maxHeadBytes);
    cut = true;
  }
  const storedBody = body.length > caps.maxBodyBytes ? body.subarray(0, caps.maxBodyBytes) : body;
  if (storedBody.length < body.length) cut = true;
  return {
    link: {
      probeId: r.probeId,
      url: r.url,
      status: r.status,
      redirects: r.redirects,
      head: sha256(head),
      body: sha256(storedBody),
      bodyBytes: body.length,
      clientTruncated: r.truncated,
      storedTruncated: cut,
    },
    headBytes: head,
    bodyBytes: storedBody,
  };
}

/**
 * Compressor settings: gzip level 6 with an 8 KiB window and memLevel 7. Why not zlib's defaults (32 KiB
 * window, memLevel 8): their ~256 KiB of deflate state per call goes through mmap/munmap and fresh page
 * faults; ~96 KiB stays in the heap. On 6.7 KB OWA logon pages the output is the same size (2,304 bytes),
 * and any gzip reader (gunzipSync, unpackBlob) inflates it: a smaller window is still the gzip format.
 */
const GZIP_OPTIONS = { level: 6, windowBits: 13, memLevel: 7 } as const;

/**
 * Compresses a blob when that saves bytes. Synchronous on purpose: bodies are per host (the logon page
 * carries the host name), so a batch has hundreds to compress, and zlib's asynchronous API (a stream
 * object and a thread-pool job each, hundreds of deflate states alive at once) measured ~1.4 ms of CPU per
 * 6.7 KB body against ~0.09 ms here: it was most of storage's CPU. The caller yields between chunks.
 */
export function packBlob(bytes: Buffer, sha: string = sha256(bytes), compress = true): PackedBlob {
  if (compress && bytes.length >= MIN_COMPRESS_BYTES) {
    const z = gzipSync(bytes, GZIP_OPTIONS);
    if (z.length < bytes.length) return { sha, encoding: 'gzip', size: bytes.length, data: z };
  }
  return { sha, encoding: 'identity', size: bytes.length, data: bytes };
}

/** The stored bytes of a blob, checked against its key (a corrupt row must not replay as a real answer). */
export function unpackBlob(sha: Buffer, encoding: string, data: Buffer): Buffer {
  if (encoding !== 'gzip' && encoding !== 'identity') throw new Error(`raw response ${sha.toString('hex')}: unknown encoding ${encoding}`);
  const bytes = encoding === 'gzip' ? gunzipSync(data) : data;
  if (!createHash('sha256').update(bytes).digest().equals(sha)) throw new Error(`raw response ${sha.toString('hex')}: content does not match its sha256`);
  return bytes;
}

/** The ProbeResponse a link and its two blobs stand for (exactly what the client returned, up to the storage cap). */
export function rebuildResponse(link: ResponseLink, head: Buffer, body: Buffer): ProbeResponse {
  const { statusLine, headers } = decodeHead(head);
  return {
    probeId: link.probeId,
    url: link.url,
    status: link.status,
    statusLine,
    headers,
    body,
    // A body cut by storage reads to a detector as a body cut by the client: both are incomplete.
    truncated: link.clientTruncated || body.length < link.bodyBytes,
    redirects: [...link.redirects],
  };
}

/**
 * A bounded set of blob hashes known to be committed, so that a body seen on thousands of hosts is hashed
 * each time but compressed and sent once per process. Only hashes of committed batches go in (a rolled-back batch
 * stored nothing); when full it starts over, which only costs a resend (ON CONFLICT DO NOTHING).
 */
export class KnownBlobs {
  private readonly seen = new Set<string>();
  constructor(private readonly max = 100_000) {}
  has(sha: string): boolean {
    return this.seen.has(sha);
  }
  addAll(shas: Iterable<string>): void {
    for (const s of shas) {
      if (this.seen.size >= this.max) this.seen.clear();
      this.seen.add(s);
    }
  }
}
