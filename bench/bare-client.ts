/**
 * The baseline for bench/scan-vs-nmap.ts: the least a scanner can do per host. One TLS connection,
 * one GET of the OWA logon page, read the response until the peer closes or Content-Length is
 * reached, nothing parsed, nothing stored. Same concurrency as tocsin. Loopback lab only.
 */
import * as tls from 'node:tls';

export interface BareResult {
  readonly answered: number;
  readonly failed: number;
}

const ctx = tls.createSecureContext({ minVersion: 'TLSv1' });

function one(ip: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    let got = 0;
    let need = -1;
    let head = '';
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const sock = tls.connect({ host: ip, port, secureContext: ctx, rejectUnauthorized: false }, () => {
      sock.write(`GET /owa/auth/logon.aspx HTTP/1.1\r\nHost: ${ip}\r\nUser-Agent: bare-bench\r\nConnection: close\r\n\r\n`);
    });
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (b: Buffer) => {
      got += b.length;
      if (need < 0) {
        head += b.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0) {
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head.slice(0, end));
          need = m ? end + 4 + Number(m[1]) : Number.MAX_SAFE_INTEGER;
          got = Buffer.byteLength(head, 'latin1');
        }
      }
      if (need >= 0 && got >= need) finish(true);
    });
    sock.on('end', () => finish(got > 0));
    sock.on('error', () => finish(false));
  });
}

/** GET /owa/auth/logon.aspx over TLS on every address, `concurrency` at a time. */
export async function bareScan(ips: readonly string[], port: number, concurrency: number, timeoutMs = 5000): Promise<BareResult> {
  let next = 0;
  let answered = 0;
  let failed = 0;
  const loops = Array.from({ length: Math.min(concurrency, ips.length) }, async () => {
    while (next < ips.length) {
      const ip = ips[next++] ?? '';
      if (await one(ip, port, timeoutMs)) answered++;
      else failed++;
    }
  });
  await Promise.all(loops);
  return { answered, failed };
}
