/**
 * Socket-level hostile behaviours: peers a scanner must survive without stalling or crashing.
 *  - tarpit: accepts the connection and never sends a byte (nor completes TLS);
 *  - slow drip: answers a request one byte per second, forever (defeats per-read timeouts);
 *  - garbage: random bytes or an SSH banner instead of TLS/HTTP, or random bytes after a TLS handshake;
 *  - oversized body: a 50 MB response streamed with back-pressure (defeats unbounded buffering).
 * Every behaviour ends when the client goes away, and at the latest after HOSTILE_MAX_MS, so an
 * abandoned lab connection never lives forever.
 */
import type { Duplex } from 'node:stream';
import { prng } from './prng.js';

/** Upper bound on how long the lab keeps a hostile connection open on its own. */
export const HOSTILE_MAX_MS = 10 * 60_000;

/** What the slow-drip hosts send, one byte per second: a response whose header line never ends. */
const DRIP_PREFIX = Buffer.from('HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/10.0\r\nX-Drip: ', 'latin1');

/**
 * All slow-drip connections share one 1-second timer: a byte each per tick. Cheap for thousands of
 * sockets, and nothing to clean up per connection beyond leaving the set.
 */
export class DripPool {
  private readonly sockets = new Map<Duplex, number>();
  private timer: NodeJS.Timeout | null = null;

  add(s: Duplex): void {
    if (this.sockets.has(s)) return;
    this.sockets.set(s, 0);
    s.once('close', () => this.sockets.delete(s));
    this.tickOne(s);
    if (this.timer === null) {
      this.timer = setInterval(() => {
        for (const sock of this.sockets.keys()) this.tickOne(sock);
      }, 1000);
      this.timer.unref();
    }
  }

  private tickOne(s: Duplex): void {
    const n = this.sockets.get(s) ?? 0;
    if (s.destroyed || !s.writable) {
      this.sockets.delete(s);
      return;
    }
    const byte = n < DRIP_PREFIX.length ? DRIP_PREFIX.subarray(n, n + 1) : DRIP_A;
    this.sockets.set(s, n + 1);
    s.write(byte);
  }

  get size(): number {
    return this.sockets.size;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.sockets.clear();
  }
}
const DRIP_A = Buffer.from('a');

/** Deterministic random bytes per host (the same garbage on every run). */
export function garbageBytes(seed: number, length = 4096): Buffer {
  const rng = prng(seed);
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = Math.floor(rng() * 256);
  // Never start like an HTTP status line or a TLS record, whatever the seed.
  b[0] = 0x00;
  return b;
}

export const SSH_BANNER = Buffer.from('SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.2\r\n', 'latin1');

/** Size of the oversized body. */
export const OVERSIZED_BODY_BYTES = 50 * 1024 * 1024;
const FILLER = Buffer.alloc(64 * 1024, '<!-- padding padding padding padding padding padding padding -->\n');

/**
 * Streams a 50 MB HTML response with back-pressure; stops as soon as the client closes or the
 * socket errors. `onDone` runs once, whatever the outcome.
 */
export function streamOversized(s: Duplex, dateLine: Buffer, head: boolean, onDone: () => void): void {
  let sent = 0;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    s.off('drain', pump);
    s.off('close', finish);
    onDone();
  };
  const pump = (): void => {
    while (!done && sent < OVERSIZED_BODY_BYTES) {
      if (s.destroyed || !s.writable) return finish();
      const n = Math.min(FILLER.length, OVERSIZED_BODY_BYTES - sent);
      sent += n;
      if (!s.write(n === FILLER.length ? FILLER : FILLER.subarray(0, n))) return; // wait for 'drain'
    }
    finish();
  };
  s.on('close', finish);
  s.on('drain', pump);
  s.write(
    Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nServer: Microsoft-IIS/10.0\r\nX-Powered-By: ASP.NET\r\n', 'latin1'),
      dateLine,
      Buffer.from(`Content-Length: ${OVERSIZED_BODY_BYTES}\r\n\r\n`, 'latin1'),
    ]),
  );
  if (head) return finish();
  pump();
}
