/**
 * A throw-away TLS certificate for the independent estate, made with the `openssl` CLI (as an
 * administrator of a test estate would), in a temporary directory removed by the caller.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  readonly key: Buffer;
  readonly cert: Buffer;
}

/** Self-signed P-256 certificate for `mail.estate.test`, valid two days. Throws if openssl is missing. */
export function makeCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-estate-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=mail.estate.test',
      '-addext', 'subjectAltName=DNS:mail.estate.test,DNS:autodiscover.estate.test',
    ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    return { key: readFileSync(key), cert: readFileSync(cert) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
