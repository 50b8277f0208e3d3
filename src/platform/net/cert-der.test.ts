/**
 * The cheap certificate reading (cert-der.ts) against Node's X509Certificate view, over real TLS
 * handshakes on loopback (127.0.0.1 only) with the lab's certificates, sent with their issuer as real
 * servers do; and against hostile bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { leafDerFromSession, summaryFromCertDer, summaryFromSessionDer } from './cert-der.js';
import { summarizeCert, summarizeCertSlow } from './tls-context.js';
import { labCertificates } from '../../../lab/cert-store.js';

// The lab makes its certificates at first start (none are shipped); tests are outside the import rules.
const certDir = (await labCertificates()).dir;
const LEAVES = ['mail-alpha', 'mail-bravo', 'mail-charlie', 'mail-delta', 'mail-echo', 'exch-selfsigned', 'localhost', 'outlook', 'phish', 'web'];

function pem(id: string, kind: 'cert' | 'key'): string {
  return readFileSync(join(certDir, `${id}.${kind}.pem`), 'latin1');
}

/** One TLS handshake with a server presenting `id` (plus the lab CA unless self-signed); `look` runs on the client socket. */
async function withPeer<T>(id: string, maxVersion: tls.SecureVersion, look: (s: tls.TLSSocket) => T): Promise<T> {
  const chain = id === 'exch-selfsigned' ? pem(id, 'cert') : pem(id, 'cert') + pem('lab-ca', 'cert');
  const server = tls.createServer({ key: pem(id, 'key'), cert: chain, maxVersion }, (s) => s.on('error', () => undefined).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise<T>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        try {
          resolve(look(s));
        } catch (e) {
          reject(e);
        } finally {
          s.destroy();
        }
      });
      s.on('error', reject);
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

test('the session-DER summary equals the X509Certificate summary for every lab certificate, TLS 1.2 and 1.3', async () => {
  for (const id of LEAVES) {
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const { fast, slow, viaSession } = await withPeer(id, v, (s) => ({
        fast: summarizeCert(s),
        slow: summarizeCertSlow(s),
        viaSession: summaryFromSessionDer(s.getSession()),
      }));
      assert.notEqual(viaSession, null, `${id} ${v}: the fast path must read this certificate`);
      assert.notEqual(slow, null);
      assert.deepEqual(fast, slow, `${id} ${v}`);
      assert.deepEqual(viaSession, slow, `${id} ${v}`);
    }
  }
});

test('summaryFromCertDer reads subject CN, DNS/IP SANs, issuer CN, validity and SHA-256 like Node does', () => {
  const x = new X509Certificate(pem('localhost', 'cert'));
  const s = summaryFromCertDer(x.raw);
  assert.ok(s !== null);
  assert.equal(s.subjectCn, 'localhost');
  assert.deepEqual(s.sans, ['localhost', '127.0.0.1']);
  assert.equal(s.validFrom, new Date(x.validFrom).toISOString());
  assert.equal(s.validTo, new Date(x.validTo).toISOString());
  assert.equal(s.sha256, x.fingerprint256.replace(/:/g, '').toLowerCase());
  const issuer = summaryFromCertDer(new X509Certificate(pem('mail-alpha', 'cert')).raw);
  assert.equal(issuer?.issuerCn, 'Tocsin Lab Issuing CA');
});

test('names Node would escape or quote go the slow path (null here), never a different rendering', () => {
  const der = Buffer.from(new X509Certificate(pem('mail-alpha', 'cert')).raw);
  const at = der.indexOf('mail.alpha.example');
  assert.ok(at > 0);
  const odd = Buffer.from(der);
  odd.write('mail,alpha"example', at, 'latin1'); // same length, characters Node renders specially
  assert.equal(summaryFromCertDer(odd), null);
});

test('hostile bytes: truncations, garbage and sessions without a peer certificate give null, never a throw', () => {
  const der = Buffer.from(new X509Certificate(pem('mail-echo', 'cert')).raw);
  for (let n = 0; n < der.length; n++) assert.equal(summaryFromCertDer(der.subarray(0, n)), null, `truncated at ${n}`);
  let seed = 7;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(1 + (i % 300));
    for (let j = 0; j < b.length; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      b[j] = seed >>> 24;
    }
    if (i % 2 === 0) b[0] = 0x30;
    assert.doesNotThrow(() => summaryFromCertDer(b));
    assert.doesNotThrow(() => summaryFromSessionDer(b));
  }
  // A session SEQUENCE whose fields hold no [3] peer certificate.
  assert.equal(leafDerFromSession(Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x00])), null);
  assert.equal(summaryFromSessionDer(undefined), null);
  // A length field claiming more than its container.
  assert.equal(summaryFromCertDer(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])), null);
});
