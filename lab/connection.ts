/**
 * Accepting a connection: admission (loopback only), mapping it to its simulated host by the address it
 * was made to, the socket-level behaviours that come before any HTTP (tarpit, garbage instead of TLS),
 * then TLS with the host's context and the HTTP responder.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { LabHost } from './estate.js';
import { garbageBytes, HOSTILE_MAX_MS, SSH_BANNER } from './hostile.js';
import { serveHttp, type HostRuntime, type ServeEnv } from './http-serve.js';
import { admitConnection, hostIndex } from './net-guard.js';
import { contextKey } from './tls-contexts.js';

/** Idle keep-alive connections are closed after this (IIS's default is 120 s; shorter frees sockets sooner). */
const IDLE_MS = 30_000;

export interface AcceptEnv extends ServeEnv {
  readonly hosts: readonly LabHost[];
  readonly baseInt: number;
  readonly contexts: ReadonlyMap<string, tls.SecureContext>;
  runtimeOf(index: number): HostRuntime;
}

export interface ConnectionCounts {
  connections: number;
  rejected: number;
  readonly open: Set<net.Socket>;
}

/** Resets a connection (RST), as a closed port would. */
function reset(s: net.Socket): void {
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else s.destroy();
}

/** Starts serving an admitted connection to host `i`, as its kind behaves. */
function begin(raw: net.Socket, i: number, secure: boolean, env: AcceptEnv): void {
  if (raw.destroyed) return;
  const rt = env.runtimeOf(i);
  const host = rt.host;
  switch (host.kind) {
    case 'tarpit':
      // Accept, read nothing, send nothing (not even a TLS ServerHello).
      raw.setTimeout(HOSTILE_MAX_MS);
      return;
    case 'garbage':
      if (host.variant === 'random-bytes' || host.variant === 'ssh-banner') {
        raw.setTimeout(HOSTILE_MAX_MS);
        raw.write(host.variant === 'random-bytes' ? garbageBytes(host.index + 1) : SSH_BANNER);
        raw.resume();
        return;
      }
      break;
    case 'slow-drip':
      raw.setTimeout(HOSTILE_MAX_MS);
      break;
    default:
      raw.setTimeout(IDLE_MS);
  }
  if (secure) {
    const t = new tls.TLSSocket(raw, { isServer: true, secureContext: env.contexts.get(contextKey(host)), ALPNProtocols: ['http/1.1'] });
    serveHttp(t, raw, rt, true, env);
  } else {
    serveHttp(raw, raw, rt, false, env);
  }
}

/** The 'connection' handler of one listening port (TLS or plain). */
export function acceptor(env: AcceptEnv, counts: ConnectionCounts, secure: boolean): (raw: net.Socket) => void {
  return (raw) => {
    raw.on('error', () => raw.destroy());
    if (!admitConnection(raw.localAddress, raw.remoteAddress)) {
      counts.rejected++;
      raw.destroy();
      return;
    }
    const i = hostIndex(raw.localAddress, env.baseInt, env.hosts.length);
    const host = i < 0 ? undefined : env.hosts[i];
    if (host === undefined || !(secure ? host.ports.https : host.ports.http)) {
      counts.rejected++;
      reset(raw);
      return;
    }
    counts.connections++;
    counts.open.add(raw);
    raw.once('close', () => counts.open.delete(raw));
    raw.on('timeout', () => raw.destroy());
    raw.setNoDelay(true);
    if (env.latencyMs > 0) setTimeout(() => begin(raw, i, secure, env), env.latencyMs);
    else begin(raw, i, secure, env);
  };
}
