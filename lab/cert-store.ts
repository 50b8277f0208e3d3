/**
 * The lab's keys and certificates: made at first start (cert-gen.ts), kept in a cache directory, reused
 * afterwards. Never shipped: the package carries no private key (a test runs `npm pack --dry-run`).
 *
 * Where: $TOCSIN_HOME/lab when TOCSIN_HOME is set, else <os.tmpdir()>/tocsin-lab-<uid>. The set lives in
 * `certs-<hash>/`, the hash covering the specs below, so changing a spec makes a new set instead of serving
 * a stale one. A set is written into a temporary directory and renamed into place in one step: processes
 * that start together (a node:cluster of lab workers, parallel tests) either win the rename or read the
 * winner's complete set, never a key from one run and a certificate from another.
 *
 * These keys protect nothing (loopback-only test infrastructure), but they are still private keys: files
 * mode 0600 in a mode 0700 directory owned by the current user; a cache directory that another user owns
 * or can write to is refused (os.tmpdir() is shared).
 */
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { errno, TocsinError } from '../src/core/errors.js';
import { ensureDir, homeFsError } from '../src/platform/paths.js';
import { certificateDer, certificatePem, generateKeys, privateKeyPem, type DistinguishedName, type Issuer, type LabKeyType } from './cert-gen.js';

/** Id of the issuing CA: its certificate goes after each CA-issued leaf in the chain a host sends. */
export const LAB_CA_ID = 'lab-ca';

export interface LabCertSpec {
  readonly id: string;
  readonly key: LabKeyType;
  readonly subject: DistinguishedName;
  readonly sans: readonly string[];
  /** 'ca': issued by the lab CA; 'self': self-signed (as Exchange setup makes its default certificate). */
  readonly issuer: 'ca' | 'self';
}

/**
 * ECDSA P-256 for most hosts (cheap server-side handshakes), RSA-2048 where real estates typically have
 * it: an older commercial certificate, and Exchange's own self-signed certificate (CN = server name).
 * Distinct CNs/SANs (mail.<org>.example) give attribution something to match on.
 */
export const LAB_CERT_SPECS: readonly LabCertSpec[] = [
  { id: 'mail-alpha', key: 'ec', issuer: 'ca', subject: { c: 'XX', o: 'Alpha Example', cn: 'mail.alpha.example' }, sans: ['mail.alpha.example', 'autodiscover.alpha.example', 'owa.alpha.example'] },
  { id: 'mail-bravo', key: 'ec', issuer: 'ca', subject: { c: 'XX', o: 'Bravo Example', cn: 'mail.bravo.example' }, sans: ['mail.bravo.example', 'autodiscover.bravo.example'] },
  { id: 'mail-charlie', key: 'ec', issuer: 'ca', subject: { c: 'XX', o: 'Charlie Example', cn: 'mail.charlie.example' }, sans: ['mail.charlie.example', 'autodiscover.charlie.example', 'webmail.charlie.example'] },
  { id: 'mail-delta', key: 'ec', issuer: 'ca', subject: { c: 'XX', o: 'Delta Example', cn: '*.delta.example' }, sans: ['*.delta.example', 'delta.example'] },
  { id: 'mail-echo', key: 'rsa', issuer: 'ca', subject: { c: 'XX', o: 'Echo Example', cn: 'mail.echo.example' }, sans: ['mail.echo.example', 'autodiscover.echo.example', 'legacy.echo.example'] },
  { id: 'exch-selfsigned', key: 'rsa', issuer: 'self', subject: { cn: 'EXCH01' }, sans: ['EXCH01', 'EXCH01.corp.foxtrot.local'] },
  {
    id: 'outlook',
    key: 'ec',
    issuer: 'ca',
    subject: { c: 'XX', o: 'Tocsin Lab (Exchange Online stand-in)', cn: 'outlook.com' },
    sans: ['outlook.com', '*.outlook.com', 'outlook.office365.com', '*.office365.com', 'outlook.office.com', '*.outlook.office.com'],
  },
  { id: 'phish', key: 'ec', issuer: 'ca', subject: { cn: 'owa-login.secure-mailbox.example' }, sans: ['owa-login.secure-mailbox.example'] },
  { id: 'web', key: 'ec', issuer: 'ca', subject: { c: 'XX', o: 'Golf Example', cn: 'www.golf.example' }, sans: ['www.golf.example', 'golf.example'] },
  { id: 'localhost', key: 'ec', issuer: 'ca', subject: { cn: 'localhost' }, sans: ['localhost', '127.0.0.1'] },
];

const CA_SUBJECT: DistinguishedName = { c: 'XX', o: 'Tocsin Lab', cn: 'Tocsin Lab Issuing CA' };
const DAY_MS = 86_400_000;
/** Ten years, as the committed certificates had. */
const VALID_DAYS = 3650;
/** A set with less than this left is made anew rather than served until it expires mid-benchmark. */
const RENEW_BEFORE_MS = 30 * DAY_MS;
/** Bumped when the file layout or the encoding changes. */
const FORMAT = 1;

export interface LabCert {
  readonly id: string;
  readonly keyPem: string;
  readonly certPem: string;
  /** What a server sends: the leaf, then its issuer (self-signed certificates stand alone). */
  readonly chainPem: string;
}

export interface LabCertSet {
  /** Directory holding `<id>.key.pem` and `<id>.cert.pem` for every id, and `lab-ca.cert.pem`. */
  readonly dir: string;
  /** True when this call made the set (first start), false when it reused one. */
  readonly generated: boolean;
  readonly ids: readonly string[];
  /** The certificate `id`; throws on an unknown id (a bug in the estate's cert ids). */
  get(id: string): LabCert;
}

/** $TOCSIN_HOME/lab, else <tmpdir>/tocsin-lab-<uid>. */
export function labCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env['TOCSIN_HOME'];
  if (home !== undefined && home !== '' && isAbsolute(home)) return join(home, 'lab');
  const uid = typeof process.getuid === 'function' ? String(process.getuid()) : userInfo().username;
  return join(tmpdir(), `tocsin-lab-${uid}`);
}

/** The set's directory name: changes whenever a spec (or the format) does. */
export function setName(): string {
  const h = createHash('sha256').update(JSON.stringify({ FORMAT, CA_SUBJECT, VALID_DAYS, LAB_CERT_SPECS })).digest('hex');
  return `certs-${h.slice(0, 12)}`;
}

const loaded = new Map<string, Promise<LabCertSet>>();

/**
 * The lab's certificates from the cache under `cacheDir` (default labCacheDir()), made there first when
 * missing, expiring or damaged. One load per directory per process.
 */
export function labCertificates(options: { readonly cacheDir?: string; readonly now?: () => Date } = {}): Promise<LabCertSet> {
  const cacheDir = options.cacheDir ?? labCacheDir();
  let p = loaded.get(cacheDir);
  if (p === undefined) {
    p = ensureLabCertificates(cacheDir, options.now ?? (() => new Date()));
    loaded.set(cacheDir, p);
    // A failure is not cached: the next start tries again (the directory may have been fixed).
    p.catch(() => loaded.delete(cacheDir));
  }
  return p;
}

/** labCertificates without the per-process memo: reads the set under `cacheDir`, or makes it. */
export async function ensureLabCertificates(cacheDir: string, now: () => Date = () => new Date()): Promise<LabCertSet> {
  try {
    await privateDir(cacheDir);
    const final = join(cacheDir, setName());
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await readSet(final, now());
      if (existing !== null) return view(final, existing, false);
      if (await exists(final)) {
        // Damaged or expiring: move it aside (one step), then make a new one.
        const stale = join(cacheDir, `.stale-${process.pid}-${randomBytes(4).toString('hex')}`);
        await rename(final, stale).catch((e: unknown) => {
          if (errno(e) !== 'ENOENT') throw e;
        });
        await rm(stale, { recursive: true, force: true });
      }
      const tmp = join(cacheDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      const files = await makeSet(now());
      await mkdir(tmp, { mode: 0o700 });
      try {
        for (const [file, text] of files) await writeFile(join(tmp, file), text, { mode: file.endsWith('.key.pem') ? 0o600 : 0o644, flag: 'wx' });
        await rename(tmp, final);
        return view(final, files, true);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        // Another process renamed its set into place first: use that one (next attempt reads it).
        if (errno(e) !== 'ENOTEMPTY' && errno(e) !== 'EEXIST') throw e;
      }
    }
    throw new TocsinError('TOCSIN_LAB_START', `cannot settle the lab certificates in ${final} (another process keeps replacing them?)`);
  } catch (e) {
    if (e instanceof TocsinError) throw e;
    const coded = homeFsError(e, cacheDir, 'the lab certificates');
    if (coded instanceof TocsinError) throw coded;
    throw new TocsinError('TOCSIN_LAB_START', `cannot prepare the lab certificates in ${cacheDir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Creates `dir` (mode 0700) and refuses one that is a link, is not ours, or that others may write to. */
async function privateDir(dir: string): Promise<void> {
  // Parents get the usual 0755: TOCSIN_HOME may not exist yet, and the embedded PostgreSQL (run as its
  // own user when we are root) must traverse it later.
  await ensureDir(dirname(dir));
  await ensureDir(dir, 0o700);
  const st = await lstat(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  if (st.isSymbolicLink() || !st.isDirectory() || (uid !== null && st.uid !== uid)) {
    throw new TocsinError('TOCSIN_LAB_START', `the lab's certificate cache ${dir} is not a directory owned by this user; remove it or set TOCSIN_HOME`);
  }
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if (errno(e) === 'ENOENT') return false;
    throw e;
  }
}

const fileNames = (id: string): readonly [string, string] => [`${id}.key.pem`, `${id}.cert.pem`];

/** Makes the CA and every certificate of LAB_CERT_SPECS: file name → PEM text. */
async function makeSet(now: Date): Promise<Map<string, string>> {
  const notBefore = new Date(Math.floor((now.getTime() - DAY_MS) / 1000) * 1000); // a day of clock skew
  const notAfter = new Date(notBefore.getTime() + VALID_DAYS * DAY_MS);
  const out = new Map<string, string>();
  const caKeys = await generateKeys('ec');
  const ca: Issuer = { name: CA_SUBJECT, ...caKeys };
  const [caKeyFile, caCertFile] = fileNames(LAB_CA_ID);
  out.set(caKeyFile, privateKeyPem(caKeys.privateKey));
  out.set(caCertFile, certificatePem(certificateDer({ subject: CA_SUBJECT, notBefore, notAfter, ca: true }, caKeys)));
  const made = await Promise.all(LAB_CERT_SPECS.map(async (s) => ({ s, keys: await generateKeys(s.key) })));
  for (const { s, keys } of made) {
    const certDer = certificateDer({ subject: s.subject, sans: s.sans, notBefore, notAfter }, keys, s.issuer === 'ca' ? ca : undefined);
    const [keyFile, certFile] = fileNames(s.id);
    out.set(keyFile, privateKeyPem(keys.privateKey));
    out.set(certFile, certificatePem(certDer));
  }
  return out;
}

/**
 * Reads a set and checks it: every file present, each key matching its certificate, leaves issued by
 * this set's CA, none expiring within RENEW_BEFORE_MS. Null when absent or not usable.
 */
async function readSet(dir: string, now: Date): Promise<Map<string, string> | null> {
  const out = new Map<string, string>();
  try {
    for (const id of [LAB_CA_ID, ...LAB_CERT_SPECS.map((s) => s.id)]) {
      for (const f of fileNames(id)) out.set(f, await readFile(join(dir, f), 'latin1'));
    }
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
    throw e;
  }
  try {
    const caCert = new X509Certificate(out.get(`${LAB_CA_ID}.cert.pem`) ?? '');
    const caKey = caCert.publicKey;
    for (const id of [LAB_CA_ID, ...LAB_CERT_SPECS.map((s) => s.id)]) {
      const [keyFile, certFile] = fileNames(id);
      const x = new X509Certificate(out.get(certFile) ?? '');
      if (!x.checkPrivateKey(createPrivateKey(out.get(keyFile) ?? ''))) return null;
      if (new Date(x.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return null;
      const self = id === LAB_CA_ID || LAB_CERT_SPECS.find((s) => s.id === id)?.issuer === 'self';
      if (!x.verify(self ? x.publicKey : caKey)) return null;
    }
  } catch {
    // Unparsable PEM: made anew.
    return null;
  }
  return out;
}

function view(dir: string, files: ReadonlyMap<string, string>, generated: boolean): LabCertSet {
  const caPem = files.get(`${LAB_CA_ID}.cert.pem`) ?? '';
  const ids = LAB_CERT_SPECS.map((s) => s.id);
  return {
    dir,
    generated,
    ids,
    get(id: string): LabCert {
      const spec = LAB_CERT_SPECS.find((s) => s.id === id);
      const [keyFile, certFile] = fileNames(id);
      const keyPem = files.get(keyFile);
      const certPem = files.get(certFile);
      if (spec === undefined || keyPem === undefined || certPem === undefined) {
        throw new TocsinError('TOCSIN_INTERNAL', `the lab has no certificate "${id}"`);
      }
      return { id, keyPem, certPem, chainPem: spec.issuer === 'self' ? certPem : certPem + caPem };
    },
  };
}
