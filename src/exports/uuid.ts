/**
 * Name-based UUIDs (RFC 9562 version 5: SHA-1 of namespace + name), so an object's id follows from its content and a
 * re-export of the same facts carries the same ids (STIX 2.1 §2.9 recommends v5 for deterministic identifiers).
 * Pure.
 */
import { createHash } from 'node:crypto';

/** Tocsin's namespace for export ids (a fixed random v4 UUID; never change it, or every id changes). */
export const TOCSIN_NAMESPACE = '6c0f3a52-1a0e-4a57-9a38-2c9b5d1f7e41';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function uuidv5(name: string, namespace: string = TOCSIN_NAMESPACE): string {
  if (!UUID.test(namespace)) throw new Error(`not a UUID: ${namespace}`);
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A UUID in canonical lower-case form whose version nibble is `version`. */
export function isUuid(s: string, version?: number): boolean {
  return UUID.test(s) && (version === undefined || s[14] === String(version)) && /^[89ab]$/.test(s[19] ?? '');
}
