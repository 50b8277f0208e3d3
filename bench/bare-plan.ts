/**
 * The floor under issue 6's "CPU per host <= 1.3x the bare client": what a Node client costs per host when it sends
 * the requests tocsin's probe plan needs for an exact build (src/products/exchange/probes.ts), and nothing else.
 *
 *   bare   one TLS connection, one GET /owa/auth/logon.aspx (bench/bare-client.ts, the issue's baseline)
 *   plan   one TLS connection kept alive, the logon page, then only what the plan asks for when the page did not give
 *          an exact build with a second kind of signal: the export-tool manifest (2013+ showing only the CU),
 *          Autodiscover (still no exact build), `GET /owa/` and its redirect hop (2010 without X-OWA-Version).
 *          Responses are framed (Content-Length or chunked) and the few headers the decision needs are read;
 *          nothing is fingerprinted, assessed, stored or printed. Its rule is coarser than the plan's, so it sends
 *          MORE requests than tocsin does (1.79 per host on the all-Exchange estate against tocsin's 1.53): an upper
 *          bound of what the plan's extra requests cost.
 *
 * Both run in this process, alternated run by run, against the all-Exchange lab in its own process; CPU is
 * `process.cpuUsage()` around each run. Loopback only.
 *
 *   node --import tsx bench/bare-plan.ts [--hosts 4096] [--base 127.89.0.0] [--repeat 3] [--concurrency 256]
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { bareScan } from './bare-client.js';
import { opt } from './lib/args.js';
import { LAB_MIXES } from '../lab/estate.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'bench', 'out');
const HOSTS = Number(opt('hosts') ?? 4096);
const BASE = opt('base') ?? '127.89.0.0';
const REPEAT = Number(opt('repeat') ?? 3);
const CONCURRENCY = Number(opt('concurrency') ?? 256);

if (!BASE.startsWith('127.')) throw new Error('--base must be in 127.0.0.0/8 (loopback only)');

const ctx = tls.createSecureContext({ minVersion: 'TLSv1' });

interface Reply {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** One host, one keep-alive TLS connection, requests one after the other. */
class Conn {
  private buf = '';
  private waiting: ((r: Reply | null) => void) | null = null;
  private closed = false;
  private readonly sock: tls.TLSSocket;
  readonly ready: Promise<boolean>;

  constructor(private readonly ip: string, port: number) {
    this.sock = tls.connect({ host: ip, port, secureContext: ctx, rejectUnauthorized: false });
    this.ready = new Promise((res) => {
      this.sock.once('secureConnect', () => res(true));
      this.sock.once('error', () => res(false));
    });
    this.sock.on('data', (b: Buffer) => {
      this.buf += b.toString('latin1');
      this.tryFrame();
    });
    const end = (): void => {
      this.closed = true;
      this.tryFrame();
      const w = this.waiting;
      this.waiting = null;
      w?.(null);
    };
    this.sock.on('end', end);
    this.sock.on('close', end);
    this.sock.on('error', () => undefined);
  }

  private tryFrame(): void {
    if (this.waiting === null) return;
    const he = this.buf.indexOf('\r\n\r\n');
    if (he < 0) return;
    const head = this.buf.slice(0, he);
    const status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    let bodyEnd = -1;
    let body = '';
    if (cl !== null) {
      bodyEnd = he + 4 + Number(cl[1]);
      if (this.buf.length < bodyEnd) return;
      body = this.buf.slice(he + 4, bodyEnd);
    } else if (lower.includes('\r\ntransfer-encoding: chunked')) {
      const z = this.buf.indexOf('\r\n0\r\n\r\n', he);
      if (z < 0) return;
      bodyEnd = z + 7;
      body = this.buf.slice(he + 4, z);
    } else {
      if (!this.closed) return;
      bodyEnd = this.buf.length;
      body = this.buf.slice(he + 4);
    }
    this.buf = this.buf.slice(bodyEnd);
    const w = this.waiting;
    this.waiting = null;
    w({ status, head: lower, body });
  }

  get(path: string): Promise<Reply | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((res) => {
      this.waiting = res;
      this.sock.write(`GET ${path} HTTP/1.1\r\nHost: ${this.ip}\r\nUser-Agent: bare-plan-bench\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

const EXPORTTOOL = '/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application';

/** The plan's requests for one host (the decision only as fine as needed to send the same requests). */
async function planHost(ip: string, port: number, timeoutMs: number): Promise<number> {
  const c = new Conn(ip, port);
  const timer = setTimeout(() => c.close(), timeoutMs);
  let requests = 0;
  try {
    if (!(await c.ready)) return 0;
    requests++;
    const logon = await c.get('/owa/auth/logon.aspx');
    if (logon === null) return requests;
    const hasVersion = logon.head.includes('\r\nx-owa-version:');
    const legacy = /\/owa\/(?:14|8)\.\d+\.\d+\.\d+\//.test(logon.body);
    const cuOnly = /\/owa\/auth\/15\.\d+\.\d+\//.test(logon.body);
    if (hasVersion) return requests;
    let exact = legacy;
    if (cuOnly && !legacy) {
      requests++;
      const m = await c.get(EXPORTTOOL);
      if (m !== null && m.status === 200 && m.body.includes('assemblyIdentity')) return requests;
      requests++;
      const a = await c.get('/autodiscover/autodiscover.xml');
      if (a !== null && a.head.includes('\r\nx-owa-version:')) exact = true;
      if (exact) return requests;
    }
    requests++;
    const r = await c.get('/owa/');
    const loc = r === null ? null : /\r\nlocation:\s*(\S+)/.exec(r.head);
    if (r !== null && r.status >= 300 && r.status < 400 && loc?.[1] !== undefined) {
      const u = new URL(loc[1], `https://${ip}/`);
      requests++;
      await c.get(u.pathname + u.search);
    }
    return requests;
  } finally {
    clearTimeout(timer);
    c.close();
  }
}

async function planScan(ips: readonly string[], port: number): Promise<{ answered: number; requests: number }> {
  let next = 0;
  let answered = 0;
  let requests = 0;
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ips.length) }, async () => {
    while (next < ips.length) {
      const n = await planHost(ips[next++] ?? '', port, 5000);
      if (n > 0) answered++;
      requests += n;
    }
  }));
  return { answered, requests };
}

function addresses(): string[] {
  const [a, b, c, d] = BASE.split('.').map(Number) as [number, number, number, number];
  const start = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
  return Array.from({ length: HOSTS }, (_, i) => {
    const v = start + i;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  });
}

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  const truth = join(out, `truth-bare-plan-${process.pid}.jsonl`);
  const child = fork(join(root, 'lab', 'child.ts'), [JSON.stringify({ hosts: HOSTS, base: BASE, seed: 1, httpsPort: 0, httpPort: 0, latencyMs: 0, truthPath: truth, mix: LAB_MIXES['all-exchange'], workers: 1 })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const msg = await new Promise<{ type: string; httpsPort?: number; message?: string }>((res) => {
    child.once('message', (m) => res(m as { type: string }));
    child.once('exit', () => res({ type: 'error', message: 'lab exited' }));
  });
  if (msg.type !== 'ready' || msg.httpsPort === undefined) throw new Error(`lab failed: ${msg.message ?? '?'}`);
  const port = msg.httpsPort;
  const ips = addresses();
  const exchange = existsSync(truth) ? readFileSync(truth, 'utf8').split('\n').filter((l) => l.includes('ms-exchange')).length : -1;
  process.stdout.write(`${HOSTS} all-Exchange lab hosts (${BASE}), ${exchange} Exchange in the truth, port ${port}, concurrency ${CONCURRENCY}, repeat ${REPEAT}, load ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
  await bareScan(ips.slice(0, 256), port, CONCURRENCY); // warm-up: TLS contexts, JIT
  await planScan(ips.slice(0, 256), port);
  const rows: { kind: string; wall: number; cpuMsPerHost: number; note: string }[] = [];
  for (let r = 0; r < REPEAT; r++) {
    for (const kind of r % 2 === 0 ? ['bare', 'plan'] : ['plan', 'bare']) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      let note: string;
      if (kind === 'bare') {
        const b = await bareScan(ips, port, CONCURRENCY);
        note = `${b.answered} answered, ${b.failed} failed, 1.00 requests/host`;
      } else {
        const p = await planScan(ips, port);
        note = `${p.answered} answered, ${(p.requests / HOSTS).toFixed(2)} requests/host`;
      }
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const cu = process.cpuUsage(c0);
      rows.push({ kind, wall, cpuMsPerHost: (cu.user + cu.system) / 1000 / HOSTS, note });
      process.stdout.write(`  run ${r + 1} ${kind.padEnd(5)} wall ${wall.toFixed(2)} s  CPU ${((cu.user + cu.system) / 1000 / HOSTS).toFixed(3)} ms/host  ${note}\n`);
    }
  }
  const med = (k: string, f: (x: (typeof rows)[number]) => number): number => {
    const v = rows.filter((x) => x.kind === k).map(f).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)] ?? NaN;
  };
  const bw = med('bare', (x) => x.wall);
  const bc = med('bare', (x) => x.cpuMsPerHost);
  const pw = med('plan', (x) => x.wall);
  const pc = med('plan', (x) => x.cpuMsPerHost);
  process.stdout.write(`median: bare ${bw.toFixed(2)} s, ${bc.toFixed(3)} ms/host; plan ${pw.toFixed(2)} s, ${pc.toFixed(3)} ms/host\n`);
  process.stdout.write(`plan / bare: CPU per host ${(pc / bc).toFixed(2)}x, wall ${(pw / bw).toFixed(2)}x (issue 6 targets for the whole scan: <= 1.3x CPU, <= 1.15x wall)\n`);
  child.send({ type: 'close' });
  setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  rmSync(truth, { force: true });
}

await main();
