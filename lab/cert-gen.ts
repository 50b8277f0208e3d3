/**
 * A small X.509 v3 certificate writer (DER), so the lab makes its own keys and certificates at first start
 * instead of shipping private keys in the package. Node reads certificates (crypto.X509Certificate) but has
 * no writer, and the `openssl` CLI is not guaranteed to be installed, so the few structures a TLS server
 * certificate needs are encoded here (RFC 5280):
 *
 *   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertificate ::= SEQUENCE { [0] version v3, serialNumber, signature, issuer, validity, subject,
 *                                 subjectPublicKeyInfo, [3] extensions }
 *
 * Keys are ECDSA P-256 (cheap handshakes: the lab's CPU counts against the scanner in the benchmark) or
 * RSA-2048 (what older commercial certificates and Exchange's own self-signed certificate use). Signatures
 * are ecdsa-with-SHA256 or sha256WithRSAEncryption, by crypto.sign. Names are written as PrintableString
 * (C) and UTF8String (O, CN), the string types the scanner's DER reader (src/platform/net/cert-der.ts)
 * takes on its fast path.
 */
import { createHash, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

export type LabKeyType = 'ec' | 'rsa';

export interface DistinguishedName {
  /** Two-letter country code (PrintableString). */
  readonly c?: string;
  readonly o?: string;
  readonly cn: string;
}

export interface CertificateSpec {
  readonly subject: DistinguishedName;
  /** DNS names and IPv4 addresses (dotted quad), in order. */
  readonly sans?: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A CA certificate (basicConstraints cA, keyCertSign) rather than a TLS server certificate. */
  readonly ca?: boolean;
  /** Serial number bytes; default 16 random bytes (positive, minimal). */
  readonly serial?: Buffer;
}

export interface Issuer {
  readonly name: DistinguishedName;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

// ---------------------------------------------------------------------------------------------------------
// DER

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from([0x80 | out.length, ...out]);
}

/** One TLV with the given tag byte. */
export function der(tag: number, ...content: readonly Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

const seq = (...c: readonly Buffer[]): Buffer => der(0x30, ...c);
const set = (...c: readonly Buffer[]): Buffer => der(0x31, ...c);
const octets = (b: Buffer): Buffer => der(0x04, b);
const NULL = Buffer.from([0x05, 0x00]);
const TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** BIT STRING with `unused` padding bits in the last byte. */
function bitString(b: Buffer, unused = 0): Buffer {
  return der(0x03, Buffer.from([unused]), b);
}

/** A non-negative INTEGER from big-endian bytes, minimal (RFC 5280 serials and small numbers). */
function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return der(0x02, (v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

/** OBJECT IDENTIFIER from dotted text. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const out: number[] = [40 * a + b];
  for (const arc of rest) {
    const sevens: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) sevens.unshift((v & 0x7f) | 0x80);
    out.push(...sevens);
  }
  return der(0x06, Buffer.from(out));
}

/** UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), whole seconds, UTC. */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? der(0x17, Buffer.from(digits.slice(2), 'latin1')) : der(0x18, Buffer.from(digits, 'latin1'));
}

const OID = {
  c: '2.5.4.6',
  o: '2.5.4.10',
  cn: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

function name(n: DistinguishedName): Buffer {
  const rdn = (type: string, value: Buffer): Buffer => set(seq(oid(type), value));
  const parts: Buffer[] = [];
  if (n.c !== undefined) parts.push(rdn(OID.c, der(0x13, Buffer.from(n.c, 'latin1'))));
  if (n.o !== undefined) parts.push(rdn(OID.o, der(0x0c, Buffer.from(n.o, 'utf8'))));
  parts.push(rdn(OID.cn, der(0x0c, Buffer.from(n.cn, 'utf8'))));
  return seq(...parts);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** GeneralNames: dNSName [2] IA5String, iPAddress [7] OCTET STRING (IPv4 only: the lab is IPv4). */
function generalNames(sans: readonly string[]): Buffer {
  return seq(
    ...sans.map((s) => {
      const m = IPV4.exec(s);
      if (m !== null) return der(0x87, Buffer.from(m.slice(1, 5).map(Number)));
      if (!/^[\x21-\x7e]+$/.test(s)) throw new RangeError(`SAN ${JSON.stringify(s)} is not a plain DNS name or IPv4 address`);
      return der(0x82, Buffer.from(s, 'latin1'));
    }),
  );
}

/** Key identifier: SHA-1 of the encoded public key (RFC 5280 4.2.1.2 allows any method that is unique). */
function keyId(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest();
}

function isEc(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec';
}

function signatureAlgorithm(signer: KeyObject): Buffer {
  return isEc(signer) ? seq(oid(OID.ecdsaWithSha256)) : seq(oid(OID.sha256WithRsa), NULL);
}

/** A positive serial: 16 random bytes, top bit clear, first byte non-zero (so the INTEGER stays 16 bytes). */
export function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x01;
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// Certificates

export async function generateKeys(type: LabKeyType): Promise<KeyPair> {
  return type === 'ec'
    ? generateKeyPairAsync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
}

/**
 * The DER of a certificate for `publicKey`, signed by `issuer` (self-signed when issuer is omitted: then
 * the subject's own key signs and the issuer name is the subject).
 */
export function certificateDer(spec: CertificateSpec, subjectKeys: KeyPair, issuer?: Issuer): Buffer {
  const signer = issuer ?? { name: spec.subject, privateKey: subjectKeys.privateKey, publicKey: subjectKeys.publicKey };
  const sigAlg = signatureAlgorithm(signer.privateKey);
  const exts: Buffer[] = [];
  if (spec.ca === true) {
    exts.push(extension(OID.basicConstraints, true, seq(TRUE)));
    // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000_0110, one unused bit.
    exts.push(extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)));
  } else {
    exts.push(extension(OID.basicConstraints, false, seq()));
    // digitalSignature (bit 0), plus keyEncipherment (bit 2) for RSA keys (TLS 1.2 RSA key transport).
    // Not on a self-signed certificate: without keyCertSign OpenSSL would no longer see it as its own
    // issuer (X509_check_issued), and a scanner could not tell it is self-signed.
    if (issuer !== undefined) {
      exts.push(
        extension(OID.keyUsage, true, isEc(subjectKeys.publicKey) ? bitString(Buffer.from([0x80]), 7) : bitString(Buffer.from([0xa0]), 5)),
      );
    }
    exts.push(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))));
  }
  if (spec.sans !== undefined && spec.sans.length > 0) exts.push(extension(OID.subjectAltName, false, generalNames(spec.sans)));
  exts.push(extension(OID.subjectKeyId, false, octets(keyId(subjectKeys.publicKey))));
  exts.push(extension(OID.authorityKeyId, false, seq(der(0x80, keyId(signer.publicKey)))));

  const tbs = seq(
    der(0xa0, integer(Buffer.from([2]))), // v3
    integer(spec.serial ?? randomSerial()),
    sigAlg,
    name(signer.name),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.subject),
    subjectKeys.publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, seq(...exts)),
  );
  // ECDSA signatures come out as DER Ecdsa-Sig-Value (Node's default), which is what X.509 wants.
  const signature = sign('sha256', tbs, signer.privateKey);
  return seq(tbs, sigAlg, bitString(signature));
}

/** PEM armour of a DER certificate. */
export function certificatePem(derBytes: Buffer): string {
  const b64 = derBytes.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/** PKCS#8 PEM of a private key (what tls.createSecureContext takes). */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
