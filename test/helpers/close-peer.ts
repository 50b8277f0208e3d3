/**
 * A fake peer at the network edge for the engine's pacing and loss tests: an Exchange-like HTTP server
 * that closes every connection after one response (`Connection: close`, as many Exchange front ends
 * and load balancers do) and redirects its logon page once, so one host costs several connections.
 *
 *   GET /owa/auth/logon.aspx          302 → /owa/auth/logon.aspx?replaceCurrent=1 (same target: followed)
 *   GET /owa/auth/logon.aspx?...      200, X-FEServer and X-OWA-Version 15.1.2176.2, an OWA-like page
 *   anything else                     404
 *
 * It listens on 0.0.0.0 (one socket answers every 127.94.x.y) and destroys, unread, any connection made
 * to an address outside 127.94.0.0/16 or from outside 127.0.0.0/8. `startClosePeer` runs it in this process and counts accepted
 * connections; `spawnClosePeer` runs it in a child process with a tiny accept backlog, which the test
 * can freeze (SIGSTOP) so that the kernel's accept queue fills and further SYNs are dropped: a full
 * listener, as a loaded server or load balancer is, made deterministic.
 */
import * as net from 'node:net';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PAGE = '<html><head><title>Outlook</title><link rel="stylesheet" href="/owa/auth/15.1.2176/themes/resources/logon.css"></head><body>Outlook Web App</body></html>';

function response(path: string): string {
  const close = 'Connection: close\r\n';
  if (path === '/owa/auth/logon.aspx') {
    return `HTTP/1.1 302 Found\r\nLocation: /owa/auth/logon.aspx?replaceCurrent=1\r\nServer: Microsoft-IIS/10.0\r\nContent-Length: 0\r\n${close}\r\n`;
  }
  if (path.startsWith('/owa/auth/logon.aspx?')) {
    return `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nServer: Microsoft-IIS/10.0\r\nX-FEServer: EXCH01\r\nX-OWA-Version: 15.1.2176.2\r\nContent-Length: ${PAGE.length}\r\n${close}\r\n${PAGE}`;
  }
  return `HTTP/1.1 404 Not Found\r\nServer: Microsoft-IIS/10.0\r\nContent-Length: 0\r\n${close}\r\n`;
}

export interface ClosePeer {
  readonly port: number;
  /** Connections accepted so far (in-process peer only; the child's are not counted). */
  accepted(): number;
  close(): Promise<void>;
}

function unmapped(addr: string | undefined): string {
  return (addr ?? '').replace(/^::ffff:/, '');
}

function server(onAccept: () => void): net.Server {
  return net.createServer((s) => {
    if (!unmapped(s.localAddress).startsWith('127.94.') || !unmapped(s.remoteAddress).startsWith('127.')) {
      s.destroy();
      return;
    }
    onAccept();
    s.on('error', () => undefined);
    let head = '';
    s.on('data', (b: Buffer) => {
      head += b.toString('latin1');
      if (head.length > 16_384) s.destroy();
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const path = head.slice(0, head.indexOf('\r\n')).split(' ')[1] ?? '/';
      s.end(response(path), 'latin1');
    });
  });
}

export async function startClosePeer(): Promise<ClosePeer> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const srv = server(() => n++);
  srv.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen({ port: 0, host: '0.0.0.0' }, resolve));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    accepted: () => n,
    close: () => new Promise<void>((resolve) => {
      srv.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

export interface SpawnedClosePeer {
  readonly port: number;
  /** SIGSTOP: the process accepts nothing; once its backlog is full the kernel drops new SYNs. */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
  close(): Promise<void>;
}

export async function spawnClosePeer(backlog = 1): Promise<SpawnedClosePeer> {
  const self = fileURLToPath(import.meta.url);
  const child: ChildProcess = fork(self, [String(backlog)], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, TOCSIN_CLOSE_PEER_CHILD: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port?: number }) => (typeof m.port === 'number' ? resolve(m.port) : reject(new Error('bad message'))));
    child.once('exit', (code) => reject(new Error(`close-peer child exited with ${String(code)}`)));
  });
  const pid = child.pid ?? -1;
  return {
    port,
    freeze: () => process.kill(pid, 'SIGSTOP'),
    thaw: () => process.kill(pid, 'SIGCONT'),
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
      child.kill('SIGKILL');
    }),
  };
}

if (process.env.TOCSIN_CLOSE_PEER_CHILD === '1' && process.send !== undefined) {
  const backlog = Number(process.argv[2] ?? '1');
  const srv = server(() => undefined);
  srv.listen({ port: 0, host: '0.0.0.0', backlog }, () => {
    process.send?.({ port: (srv.address() as net.AddressInfo).port });
  });
  process.on('disconnect', () => process.exit(0));
}
