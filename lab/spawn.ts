/**
 * Runs the lab in a child process (benchmarks: the lab's CPU is then measured apart from the scanner's).
 *
 *   const lab = await spawnLab({ hosts: 4096, seed: 7, workers: 1 });
 *   // lab.httpsPort, lab.httpPort, lab.hosts (ground truth, regenerated here from the same seed), lab.pid
 *   await lab.close();
 *
 * The ground truth is not shipped over IPC: the estate is a pure function of (hosts, base, seed, mix,
 * builds), so the parent regenerates the same one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TocsinError } from '../src/core/errors.js';
import { labCertificates } from './cert-store.js';
import type { ChildOptions } from './child.js';
import { DEFAULT_MIX, generateEstate } from './estate.js';
import { applyWave } from './patch-wave.js';
import { DEFAULT_LAB_OPTIONS, kbBuilds, writeTruthFile, type Lab } from './server.js';

/** An in-process Lab's surface (stats live in the child process) plus the child's pid. */
export interface SpawnedLab extends Omit<Lab, 'stats'> {
  /** Pid of the lab process (the cluster primary when workers > 1). */
  readonly pid: number;
}

export interface SpawnOptions extends ChildOptions {
  /** How long to wait for the child to listen. Default 60 s (large estates render before listening). */
  readonly startTimeoutMs?: number;
}

/** The child entry next to this module: child.ts under tsx, child.js when compiled. */
function childEntry(): { file: string; execArgv: string[] } {
  const here = import.meta.url;
  const ts = here.endsWith('.ts');
  return {
    file: fileURLToPath(new URL(ts ? './child.ts' : './child.js', here)),
    // Under tsx the child needs the same loader; compiled JavaScript runs as is.
    execArgv: ts ? ['--import', 'tsx'] : [],
  };
}

export async function spawnLab(options: SpawnOptions = {}): Promise<SpawnedLab> {
  // The parent writes the ground truth (the workers would all write the same file).
  const { startTimeoutMs = 60_000, truthPath, ...childOptions } = options;
  const o = { ...DEFAULT_LAB_OPTIONS, ...childOptions };
  const builds = o.builds ?? kbBuilds();
  const hosts = applyWave(generateEstate({ hosts: o.hosts, base: o.base, seed: o.seed, mix: o.mix ?? DEFAULT_MIX }, builds), o.wave ?? {}, builds);
  // Made (or checked) here, once, before the child and its workers start: they then only read the set.
  const certs = await labCertificates(o.certCacheDir === undefined ? {} : { cacheDir: o.certCacheDir });
  const { file, execArgv } = childEntry();
  const child: ChildProcess = fork(file, [JSON.stringify(childOptions)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<{ httpsPort: number; httpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new TocsinError('TOCSIN_LAB_START', `the lab child did not start within ${startTimeoutMs} ms`));
    }, startTimeoutMs);
    child.on('message', (m: { type?: string; httpsPort?: number; httpPort?: number; message?: string }) => {
      if (m.type === 'ready' && typeof m.httpsPort === 'number' && typeof m.httpPort === 'number') {
        clearTimeout(timer);
        resolve({ httpsPort: m.httpsPort, httpPort: m.httpPort });
      } else if (m.type === 'error') {
        clearTimeout(timer);
        reject(new TocsinError('TOCSIN_LAB_START', `the lab child failed: ${m.message ?? 'unknown error'}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new TocsinError('TOCSIN_LAB_START', `the lab child exited with code ${String(code)} before listening`));
    });
  });
  if (truthPath !== undefined) await writeTruthFile(truthPath, hosts);
  let closed: Promise<void> | null = null;
  return {
    ...ready,
    pid: child.pid ?? -1,
    base: o.base,
    seed: o.seed,
    hosts,
    certs: { dir: certs.dir, generated: certs.generated },
    writeTruth: (path) => writeTruthFile(path, hosts),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        if (child.connected) child.send({ type: 'close' });
        else child.kill('SIGTERM');
      });
      return closed;
    },
  };
}
