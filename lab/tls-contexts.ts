/**
 * One TLS SecureContext per (certificate, highest TLS version) pair in use, built once before listening:
 * creating a context parses the key, which costs far more than a handshake's share of the lab's CPU.
 */
import tls from 'node:tls';
import type { LabCertSet } from './cert-store.js';
import type { LabHost } from './estate.js';

/**
 * Windows hosts (Exchange, IIS, the IIS-based honeypot) stop at TLS 1.2, as Windows Server 2008 R2 to 2019
 * do; the others (nginx, Apache, Exchange Online) offer TLS 1.3 too.
 */
export function tlsMaxFor(host: LabHost): 'TLSv1.2' | 'TLSv1.3' {
  return host.kind === 'exchange' || host.kind === 'iis' || (host.kind === 'owa-phish' && host.variant === 'iis75-honeypot') ? 'TLSv1.2' : 'TLSv1.3';
}

export function contextKey(host: LabHost): string {
  return `${host.cert}|${tlsMaxFor(host)}`;
}

/** Contexts for the hosts that answer TLS, keyed by contextKey. */
export function tlsContexts(hosts: readonly LabHost[], certs: LabCertSet): Map<string, tls.SecureContext> {
  const out = new Map<string, tls.SecureContext>();
  for (const h of hosts) {
    if (!h.ports.https) continue;
    const k = contextKey(h);
    if (out.has(k)) continue;
    const c = certs.get(h.cert);
    // The chain as real servers send it (leaf + issuer); self-signed certificates stand alone.
    out.set(k, tls.createSecureContext({ key: c.keyPem, cert: c.chainPem, minVersion: 'TLSv1.2', maxVersion: tlsMaxFor(h) }));
  }
  return out;
}
