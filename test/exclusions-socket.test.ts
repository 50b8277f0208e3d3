/**
 * Exclusions hold at the socket level, whatever form the addresses are written in (issue 6, finding 1).
 *
 * A dual-stack listener on `::` sees every connection to 127.93.x.y, whether the scanner dialled the IPv4
 * address or its IPv4-mapped IPv6 form ::ffff:127.93.x.y (the kernel delivers both to the same IPv4 host, and
 * reports the local address as ::ffff:127.93.x.y). It counts accepted connections per local address; the CLI
 * runs as a user runs it (child process). Only 127.93.0.0/16 is touched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/independent-estate/cli.js';

let dir = '';
let server: net.Server;
let port = 0;
/** Accepted connections per local IPv4 address (mapped prefix stripped). */
const accepted = new Map<string, number>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tocsin-excl-socket-'));
  server = net.createServer((sock) => {
    const local = (sock.localAddress ?? '').replace(/^::ffff:/i, '');
    accepted.set(local, (accepted.get(local) ?? 0) + 1);
    sock.on('error', () => undefined);
    // A plain non-Exchange answer: one request per host, nothing more to probe.
    sock.once('data', () => sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '::', ipv6Only: false }, resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

const env = (): Record<string, string> => ({
  TOCSIN_HOME: join(dir, 'home'),
  TOCSIN_EXCLUDE_FILES: '',
  TOCSIN_RATE_LIMIT: '',
  TOCSIN_RATE_PER_NETWORK: '',
});

/** Connections accepted on addresses a.b.c.first .. a.b.c.last during `run`. */
async function contacted(prefix: string, first: number, last: number, run: () => Promise<void>): Promise<Map<string, number>> {
  accepted.clear();
  await run();
  const out = new Map<string, number>();
  for (const [ip, n] of accepted) {
    const m = ip.startsWith(prefix) ? Number(ip.slice(prefix.length)) : NaN;
    if (m >= first && m <= last) out.set(ip, n);
  }
  return out;
}

async function scan(args: readonly string[]): Promise<string> {
  const r = await runCli(['scan', ...args, '--ports', `${port}/http`, '--no-store', '--no-progress', '--timeout-ms', '2000'], env(), 90_000);
  assert.equal(r.signal, null);
  assert.equal(r.code, 0, r.stderr.toString('utf8'));
  return r.stdout.toString('utf8');
}

test('targets written IPv4-mapped, exclusion written IPv4: no socket to an excluded address', { timeout: 120_000 }, async () => {
  const hit = await contacted('127.93.0.', 0, 255, () => scan(['::ffff:127.93.0.64/122', '--exclude', '127.93.0.64/26']).then(() => undefined));
  assert.deepEqual([...hit.keys()], [], 'no excluded address was contacted');
});

test('targets written IPv4, exclusion written IPv4-mapped: no socket to an excluded address', { timeout: 120_000 }, async () => {
  const hit = await contacted('127.93.0.', 0, 255, () => scan(['127.93.0.0/24', '--exclude', '::ffff:127.93.0.0/120']).then(() => undefined));
  assert.deepEqual([...hit.keys()], [], 'no excluded address was contacted');
});

test('a partial exclusion across forms: exactly the other half is contacted (the listener sees scans)', { timeout: 120_000 }, async () => {
  let out = '';
  const hit = await contacted('127.93.0.', 0, 255, async () => {
    out = await scan(['::ffff:127.93.0.64/122', '--exclude', '::ffff:7f5d:40/123', '--exclude', '127.93.0.112/28']);
  });
  // 64..95 excluded (mapped, hex), 112..127 excluded (IPv4): 96..111 remain
  const expected = Array.from({ length: 16 }, (_, i) => `127.93.0.${96 + i}`);
  assert.deepEqual([...hit.keys()].sort(), [...expected].sort());
  const ips = out.trim().split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { ip: string }).ip);
  assert.deepEqual([...ips].sort(), [...expected].sort(), 'records name the IPv4 address');
});

test('a host given as IPv4 and as IPv4-mapped IPv6 is scanned once and reported once, as IPv4', { timeout: 120_000 }, async () => {
  let out = '';
  const hit = await contacted('127.93.2.', 0, 255, async () => {
    out = await scan(['127.93.2.5', '::ffff:127.93.2.5', '[::FFFF:7f5d:205]']);
  });
  assert.deepEqual([...hit.keys()], ['127.93.2.5']);
  const ips = out.trim().split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { ip: string }).ip);
  assert.deepEqual(ips, ['127.93.2.5']);
});
