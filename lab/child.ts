/**
 * Entry point of a lab running in its own process (see spawn.ts): benchmarks put the lab there so its
 * CPU is measured apart from the scanner's. Options arrive as JSON in argv[2]; the ports go back over
 * IPC. With `workers` > 1 the lab runs as a node:cluster of identical servers sharing the two listening
 * sockets (the kernel hands each connection to one of them); every worker generates the same estate
 * from the same seed, so which worker answers makes no difference.
 *
 * Messages to the parent: {type:'ready', httpsPort, httpPort, pid} once listening, or {type:'error', message}.
 * Messages from the parent: {type:'close'} (also on disconnect): close and exit.
 */
import cluster from 'node:cluster';
import { startLab, type Lab, type LabOptions } from './server.js';

export interface ChildOptions extends LabOptions {
  readonly workers?: number;
}

interface Ready {
  readonly type: 'ready';
  readonly httpsPort: number;
  readonly httpPort: number;
  readonly pid: number;
}

function send(msg: unknown): void {
  if (typeof process.send === 'function') process.send(msg);
}

async function runServer(options: ChildOptions): Promise<Lab> {
  const lab = await startLab(options);
  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    void lab.close().finally(() => process.exit(0));
  };
  process.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'close') shutdown();
  });
  process.on('disconnect', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  return lab;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
  const workers = Math.max(1, Math.floor(options.workers ?? 1));
  if (workers === 1) {
    const lab = await runServer(options);
    send({ type: 'ready', httpsPort: lab.httpsPort, httpPort: lab.httpPort, pid: process.pid } satisfies Ready);
    return;
  }
  if (cluster.isPrimary) {
    // Workers accept on the shared sockets themselves: no round-robin hand-off through this process.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    // All workers bind the same (address, port) key, so the primary shares one handle among them; with
    // port 0 that is one ephemeral port for all.
    const ready: Ready[] = [];
    const all: ReturnType<typeof cluster.fork>[] = [];
    for (let i = 0; i < workers; i++) {
      // Only the first worker writes the ground truth file (all would write the same bytes, racing).
      const { truthPath, ...rest } = options;
      const mine: ChildOptions = i === 0 && truthPath !== undefined ? { ...rest, truthPath, workers: 1 } : { ...rest, workers: 1 };
      const w = cluster.fork({ TOCSIN_LAB_OPTIONS: JSON.stringify(mine) });
      all.push(w);
      w.on('message', (m: Ready | { type: 'error'; message: string }) => {
        if (m.type === 'error') {
          send(m);
          process.exit(1);
        }
        if (m.type !== 'ready') return;
        ready.push(m);
        if (ready.length === workers) send({ type: 'ready', httpsPort: m.httpsPort, httpPort: m.httpPort, pid: process.pid } satisfies Ready);
      });
    }
    const shutdown = (): void => {
      for (const w of all) w.send({ type: 'close' });
      setTimeout(() => process.exit(0), 3000).unref();
      cluster.on('exit', () => {
        if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      });
    };
    process.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'close') shutdown();
    });
    process.on('disconnect', shutdown);
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
    return;
  }
  // A cluster worker.
  const lab = await runServer(JSON.parse(process.env['TOCSIN_LAB_OPTIONS'] ?? '{}') as ChildOptions);
  send({ type: 'ready', httpsPort: lab.httpsPort, httpPort: lab.httpPort, pid: process.pid } satisfies Ready);
}

main().catch((e: unknown) => {
  send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100).unref();
});
