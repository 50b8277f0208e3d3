/**
 * The lab's certificates, made at first start: what Node (X509Certificate, OpenSSL's TLS verification)
 * and the scanner's own DER reader (src/platform/net/cert-der.ts) read from them, the cache's reuse,
 * renewal and atomic replacement, and its refusal of a cache directory that is a symbolic link.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import tls from 'node:tls';
import { TocsinError } from '../src/core/errors.js';
import { summaryFromCertDer } from '../src/platform/net/cert-der.js';
import { certificateDer, generateKeys } from './cert-gen.js';
import { ensureLabCertificates, LAB_CA_ID, LAB_CERT_SPECS, labCacheDir } from './cert-store.js';

const scratch = mkdtempSync(join(tmpdir(), 'tocsin-lab-certs-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(scratch, `cache-${n++}`);

const DAY = 86_400_000;

test('first start makes every certificate; Node and the scanner read CN, SANs, issuer, validity and SHA-256 from them', async () => {
  const before = Date.now();
  const set = await ensureLabCertificates(freshDir());
  assert.equal(set.generated, true);
  const ca = new X509Certificate(readFileSync(join(set.dir, `${LAB_CA_ID}.cert.pem`)));
  assert.equal(ca.ca, true);
  assert.match(ca.subject, /CN=Tocsin Lab Issuing CA/);
  for (const spec of LAB_CERT_SPECS) {
    const c = set.get(spec.id);
    const x = new X509Certificate(c.certPem);
    assert.equal(x.ca, false, spec.id);
    // Node's view
    assert.ok(x.subject.split('\n').includes(`CN=${spec.subject.cn}`), `${spec.id}: ${x.subject}`);
    assert.equal(x.subjectAltName, spec.sans.map((s) => (/^\d+\.\d+\.\d+\.\d+$/.test(s) ? `IP Address:${s}` : `DNS:${s}`)).join(', '), spec.id);
    const issuerKey = spec.issuer === 'self' ? x.publicKey : ca.publicKey;
    assert.ok(x.verify(issuerKey), `${spec.id}: signature checks with its issuer's key`);
    assert.equal(x.checkIssued(spec.issuer === 'self' ? x : ca), true, spec.id);
    assert.equal(x.publicKey.asymmetricKeyType, spec.key, spec.id);
    const from = new Date(x.validFrom).getTime();
    const to = new Date(x.validTo).getTime();
    assert.ok(from <= before && from > before - 2 * DAY, `${spec.id}: valid from about a day ago`);
    assert.ok(Math.abs(to - from - 3650 * DAY) < 1000, `${spec.id}: valid for ten years`);
    // The scanner's fast DER path reads it (null would mean the slow path) and agrees with Node.
    const s = summaryFromCertDer(x.raw);
    assert.ok(s !== null, `${spec.id}: the fast path reads it`);
    assert.equal(s.subjectCn, spec.subject.cn);
    assert.deepEqual(s.sans, spec.sans);
    assert.equal(s.issuerCn, spec.issuer === 'self' ? spec.subject.cn : 'Tocsin Lab Issuing CA');
    assert.equal(s.validFrom, new Date(x.validFrom).toISOString());
    assert.equal(s.validTo, new Date(x.validTo).toISOString());
    assert.equal(s.sha256, x.fingerprint256.replace(/:/g, '').toLowerCase());
    // The chain a server sends: leaf, then issuer (self-signed alone).
    assert.equal(c.chainPem, spec.issuer === 'self' ? c.certPem : c.certPem + readFileSync(join(set.dir, `${LAB_CA_ID}.cert.pem`), 'latin1'));
  }
});

test('a TLS client that trusts the lab CA verifies a lab host by name (OpenSSL checks the whole certificate)', async () => {
  const set = await ensureLabCertificates(freshDir());
  const caPem = readFileSync(join(set.dir, `${LAB_CA_ID}.cert.pem`), 'latin1');
  for (const [id, name] of [['mail-alpha', 'owa.alpha.example'], ['mail-echo', 'mail.echo.example'], ['mail-delta', 'mail.delta.example']] as const) {
    const c = set.get(id);
    const server = tls.createServer({ key: c.keyPem, cert: c.chainPem }, (s) => s.on('error', () => undefined).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const authorized = await new Promise<boolean>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: name, ca: caPem, rejectUnauthorized: true }, () => {
          resolve(s.authorized);
          s.destroy();
        });
        s.on('error', reject);
      });
      assert.equal(authorized, true, `${id} as ${name}`);
      // A name the certificate does not carry is refused: the SANs are really checked.
      await assert.rejects(
        new Promise((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port, servername: 'other.example', ca: caPem, rejectUnauthorized: true }, () => resolve(s.destroy()));
          s.on('error', reject);
        }),
        /ERR_TLS_CERT_ALTNAME_INVALID|does not match/,
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }
});

test('the second start reuses the keys; keys are mode 0600 in a mode 0700 directory', async () => {
  const dir = freshDir();
  const first = await ensureLabCertificates(dir);
  const second = await ensureLabCertificates(dir);
  assert.equal(first.generated, true);
  assert.equal(second.generated, false);
  assert.equal(second.dir, first.dir);
  for (const id of first.ids) assert.equal(second.get(id).keyPem, first.get(id).keyPem, id);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(first.dir).mode & 0o777, 0o700);
  for (const id of [LAB_CA_ID, ...first.ids]) assert.equal(statSync(join(first.dir, `${id}.key.pem`)).mode & 0o777, 0o600, id);
});

test('a damaged or expiring set is made anew; starts racing on an empty cache settle on one set', async () => {
  const dir = freshDir();
  const first = await ensureLabCertificates(dir);
  writeFileSync(join(first.dir, 'mail-bravo.cert.pem'), 'not a certificate');
  const repaired = await ensureLabCertificates(dir);
  assert.equal(repaired.generated, true);
  assert.notEqual(repaired.get('mail-alpha').keyPem, first.get('mail-alpha').keyPem);
  // 29 days before the end of the ten years: renewed rather than served until it expires.
  const late = await ensureLabCertificates(dir, () => new Date(Date.now() + (3650 - 29) * DAY));
  assert.equal(late.generated, true);
  assert.notEqual(late.get('mail-alpha').keyPem, repaired.get('mail-alpha').keyPem);

  const raced = freshDir();
  const all = await Promise.all([ensureLabCertificates(raced), ensureLabCertificates(raced), ensureLabCertificates(raced)]);
  const key = readFileSync(join(all[0]?.dir ?? '', 'mail-alpha.key.pem'), 'latin1');
  for (const s of all) assert.equal(s.get('mail-alpha').keyPem, key, 'every racer serves the set on disk');
  assert.equal(all.filter((s) => s.generated).length >= 1, true);
});

test('a cache directory that is a symbolic link is refused with a coded error', async () => {
  const target = freshDir();
  await ensureLabCertificates(target);
  const link = join(scratch, 'link');
  symlinkSync(target, link);
  assert.ok(lstatSync(link).isSymbolicLink());
  await assert.rejects(ensureLabCertificates(link), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_LAB_START');
});

test('the cache lives under TOCSIN_HOME when set, else in the temp directory per user', () => {
  assert.equal(labCacheDir({ TOCSIN_HOME: '/srv/tocsin' }), '/srv/tocsin/lab');
  assert.match(labCacheDir({}), /tocsin-lab-[^/]+$/);
  assert.ok(labCacheDir({}).startsWith(tmpdir()));
  assert.ok(labCacheDir({ TOCSIN_HOME: 'relative' }).startsWith(tmpdir()));
});

test('validity past 2049 is written as GeneralizedTime, and both readers agree on it', async () => {
  const keys = await generateKeys('ec');
  const der = certificateDer(
    { subject: { cn: 'far.example' }, sans: ['far.example', '127.0.0.2'], notBefore: new Date('2049-12-31T23:59:59Z'), notAfter: new Date('2051-06-01T00:00:00Z') },
    keys,
  );
  const x = new X509Certificate(der);
  assert.equal(new Date(x.validFrom).toISOString(), '2049-12-31T23:59:59.000Z');
  assert.equal(new Date(x.validTo).toISOString(), '2051-06-01T00:00:00.000Z');
  assert.equal(der.includes(Buffer.from('20510601000000Z')), true, 'GeneralizedTime after 2049');
  assert.equal(der.includes(Buffer.from('491231235959Z')), true, 'UTCTime before 2050');
  const s = summaryFromCertDer(x.raw);
  assert.equal(s?.validTo, '2051-06-01T00:00:00.000Z');
  assert.deepEqual(s?.sans, ['far.example', '127.0.0.2']);
  assert.ok(x.verify(keys.publicKey));
});

test('every certificate an estate host names is one the store makes', async () => {
  const { generateEstate } = await import('./estate.js');
  const { kbBuilds } = await import('./server.js');
  const used = new Set(generateEstate({ hosts: 4096, base: '127.1.0.0', seed: 3 }, kbBuilds()).map((h) => h.cert));
  const made = new Set(LAB_CERT_SPECS.map((s) => s.id));
  assert.deepEqual([...used].filter((id) => !made.has(id)), []);
  assert.ok(used.size >= 8, `hosts use ${used.size} certificates`);
});

test('a TOCSIN_HOME the lab creates stays traversable (mode 0755); only its lab folder is private', async () => {
  const home = join(freshDir(), 'home');
  await ensureLabCertificates(join(home, 'lab'));
  assert.equal(statSync(home).mode & 0o777, 0o755);
  assert.equal(statSync(join(home, 'lab')).mode & 0o777, 0o700);
});
