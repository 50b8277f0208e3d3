import assert from 'node:assert/strict';
import { test } from 'node:test';
import tls from 'node:tls';
import { spawnLab } from './spawn.js';

function get(ip: string, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: ip, port, rejectUnauthorized: false }, () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${ip}:${port}\r\n\r\n`));
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString('latin1'));
    });
    s.on('error', reject);
  });
}

test('spawnLab runs the lab in a cluster of child processes and returns ports and the same ground truth', async () => {
  const lab = await spawnLab({ hosts: 24, seed: 2, base: '127.5.0.0', mix: { exchange: 3, iis: 1 }, workers: 2 });
  try {
    assert.notEqual(lab.pid, process.pid);
    assert.equal(lab.hosts.length, 24);
    const ex = lab.hosts.find((h) => h.kind === 'exchange' && h.exposes.xOwaVersion);
    assert.ok(ex);
    // Several connections, so both workers are likely to answer; each must tell the same truth.
    for (let i = 0; i < 4; i++) {
      const r = await get(ex.ip, lab.httpsPort, '/owa/');
      assert.ok(r.startsWith('HTTP/1.1 302 Found'));
      assert.ok(r.includes(`X-OWA-Version: ${ex.wireBuild ?? ''}\r\n`));
    }
  } finally {
    await lab.close();
  }
  await assert.rejects(get('127.5.0.0', lab.httpsPort, '/'));
});
