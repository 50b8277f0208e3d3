/**
 * The lab server: one TLS port and one plain-HTTP port on 0.0.0.0, every accepted connection mapped to
 * its simulated host by the address it was made to (socket.localAddress), so one process answers for up
 * to 65,536 loopback addresses. Connections not entirely on 127.0.0.0/8 are destroyed unread; addresses
 * outside the estate and closed hosts are reset, like a closed port.
 *
 * Speed matters (the benchmark scans 4,096 lab hosts on the same 2-core machine): TLS is terminated per
 * connection with the host's pre-built SecureContext (ECDSA P-256 mostly), HTTP/1.1 is a lean responder
 * (http-serve.ts), and a host's responses are rendered once, on its first connection, then reused.
 * The pieces: cert-store.ts (keys made at first start), tls-contexts.ts, connection.ts (admission and
 * socket-level behaviours), http-serve.ts, exchange-responses.ts (what each kind of host answers).
 *
 *   const lab = await startLab({ hosts: 256, seed: 1 });
 *   // https://127.1.0.0:${lab.httpsPort}/owa/ ... ; lab.hosts is the ground truth
 *   await lab.close();
 */
import net from 'node:net';
import { TocsinError } from '../src/core/errors.js';
import { parseIPv4 } from '../src/core/ip.js';
import { loadExchangeKb } from '../src/products/exchange/kb/index.js';
import { labCertificates } from './cert-store.js';
import { acceptor, type AcceptEnv, type ConnectionCounts } from './connection.js';
import { DEFAULT_MIX, generateEstate, MAX_HOSTS, type LabBuildRow, type LabHost, type LabMix } from './estate.js';
import { BodyCache } from './exchange-responses.js';
import { DripPool } from './hostile.js';
import { applyWave, type LabWave } from './patch-wave.js';
import { hostRuntime, type HostRuntime } from './http-serve.js';
import { DateLine } from './routes.js';
import { tlsContexts } from './tls-contexts.js';
import { writeTruthFile } from './truth.js';

// Kept here for the callers that import them from server.js.
export { tlsMaxFor } from './tls-contexts.js';
export { truthJsonl, writeTruthFile } from './truth.js';

export interface LabOptions {
  /** Number of hosts (1..65,536). Default 256. */
  readonly hosts?: number;
  /** First address; hosts occupy consecutive addresses. Default 127.1.0.0. */
  readonly base?: string;
  /** Seed of the estate generator. Default 1. */
  readonly seed?: number;
  /** TLS port; 0 = ephemeral (default). */
  readonly httpsPort?: number;
  /** Plain HTTP port; 0 = ephemeral (default). */
  readonly httpPort?: number;
  /** Delay each accepted connection and each response by this many ms (simulated RTT). Default 0. */
  readonly latencyMs?: number;
  /** Kind weights (see DEFAULT_MIX). */
  readonly mix?: LabMix;
  /** Write the ground truth as JSONL here once listening. */
  readonly truthPath?: string;
  /** Address to bind. Default 0.0.0.0 (every 127.x.y.z answers; the admission check keeps it loopback-only). */
  readonly listenHost?: string;
  /**
   * Render every host's responses before listening (default: when hosts <= 16,384), so a benchmark does
   * not pay for rendering during the scan; larger estates render each host on its first connection.
   */
  readonly prerender?: boolean;
  /** Build rows to draw from (default: the knowledge base). For tests. */
  readonly builds?: readonly LabBuildRow[];
  /** Where the lab keeps its generated keys and certificates (default: labCacheDir(), see cert-store.ts). */
  readonly certCacheDir?: string;
  /** A patch wave applied to the generated estate (some hosts upgraded, some dark): see patch-wave.ts. */
  readonly wave?: LabWave;
}

export interface LabStats {
  readonly connections: number;
  readonly rejected: number;
  readonly requests: number;
  readonly open: number;
}

export interface Lab {
  readonly httpsPort: number;
  readonly httpPort: number;
  readonly base: string;
  readonly seed: number;
  /** Ground truth, one entry per address, in address order. */
  readonly hosts: readonly LabHost[];
  /** Where the keys and certificates are, and whether this start made them (first start) or reused them. */
  readonly certs: { readonly dir: string; readonly generated: boolean };
  /** Writes the ground truth as JSONL (one LabHost per line). */
  writeTruth(path: string): Promise<void>;
  stats(): LabStats;
  close(): Promise<void>;
}

export const DEFAULT_LAB_OPTIONS = { hosts: 256, base: '127.1.0.0', seed: 1, httpsPort: 0, httpPort: 0, latencyMs: 0 } as const;

/** Loads the build rows of the knowledge base as the estate generator wants them. */
export function kbBuilds(): readonly LabBuildRow[] {
  return loadExchangeKb().builds;
}

/** The options with defaults, checked; the estate's first address as a number. */
type Checked = LabOptions & Required<Pick<LabOptions, keyof typeof DEFAULT_LAB_OPTIONS>> & { readonly baseInt: number };

function checkedOptions(options: LabOptions): Checked {
  const o = { ...DEFAULT_LAB_OPTIONS, ...options };
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > MAX_HOSTS) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `hosts must be an integer from 1 to ${MAX_HOSTS}, got ${String(o.hosts)}`);
  }
  const baseInt = parseIPv4(o.base);
  if (baseInt === null || baseInt >>> 24 !== 127 || baseInt + o.hosts - 1 > 0x7fffffff) {
    throw new TocsinError('TOCSIN_ARG_INVALID', `base must be an IPv4 address in 127.0.0.0/8 with room for ${o.hosts} hosts, got "${o.base}"`);
  }
  if (!Number.isFinite(o.latencyMs) || o.latencyMs < 0) throw new TocsinError('TOCSIN_ARG_INVALID', 'latencyMs must be >= 0');
  return { ...o, baseInt };
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', onError);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : port);
    });
  });
}

async function listenOrFail(server: net.Server, port: number, host: string): Promise<number> {
  try {
    return await listen(server, port, host);
  } catch (e) {
    throw new TocsinError('TOCSIN_LAB_START', `cannot listen on ${host}:${port}: ${(e as Error).message}`, { cause: e });
  }
}

/** Starts the lab; resolves once both ports listen. */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const o = checkedOptions(options);
  const builds = o.builds ?? kbBuilds();
  const hosts = applyWave(generateEstate({ hosts: o.hosts, base: o.base, seed: o.seed, mix: o.mix ?? DEFAULT_MIX }, builds), o.wave ?? {}, builds);
  const certs = await labCertificates(o.certCacheDir === undefined ? {} : { cacheDir: o.certCacheDir });
  const runtimes: (HostRuntime | undefined)[] = new Array<HostRuntime | undefined>(hosts.length);
  const cache = new BodyCache();
  const date = new DateLine();
  const drip = new DripPool();
  const counts: ConnectionCounts = { connections: 0, rejected: 0, open: new Set<net.Socket>() };
  let requests = 0;
  let httpsPort = 0;
  const env: AcceptEnv = {
    hosts,
    baseInt: o.baseInt,
    contexts: tlsContexts(hosts, certs),
    runtimeOf: (i) => (runtimes[i] ??= hostRuntime(hosts[i] as LabHost, cache)),
    httpsPort: () => httpsPort,
    latencyMs: o.latencyMs,
    date,
    drip,
    onRequest: () => {
      requests++;
    },
  };
  if (o.prerender ?? hosts.length <= 16_384) for (let i = 0; i < hosts.length; i++) env.runtimeOf(i);

  const tlsServer = net.createServer(acceptor(env, counts, true));
  const httpServer = net.createServer(acceptor(env, counts, false));
  const bind = o.listenHost ?? '0.0.0.0';
  date.start();
  let httpPort: number;
  try {
    httpsPort = await listenOrFail(tlsServer, o.httpsPort, bind);
    httpPort = await listenOrFail(httpServer, o.httpPort, bind);
  } catch (e) {
    date.stop();
    tlsServer.close();
    throw e;
  }

  const lab: Lab = {
    httpsPort,
    httpPort,
    base: o.base,
    seed: o.seed,
    hosts,
    certs: { dir: certs.dir, generated: certs.generated },
    writeTruth: (path) => writeTruthFile(path, hosts),
    stats: () => ({ connections: counts.connections, rejected: counts.rejected, requests, open: counts.open.size }),
    close: async () => {
      date.stop();
      drip.stop();
      const closing = [tlsServer, httpServer].map((srv) => new Promise<void>((r) => srv.close(() => r())));
      for (const s of counts.open) s.destroy();
      counts.open.clear();
      await Promise.all(closing);
    },
  };
  if (o.truthPath !== undefined) await lab.writeTruth(o.truthPath);
  return lab;
}
