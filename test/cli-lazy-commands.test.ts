/**
 * The command registry loads a command's modules only when that command runs (src/cli/commands.ts): each entry
 * must name exactly what its module registers, `--help` must still list every command, and a plain scan must not
 * load the other commands' modules (the web server, mail, the job queue): that was most of a scan's start-up CPU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { COMMANDS, commandsFor } from '../src/cli/commands.js';
import { createContext } from '../src/cli/context.js';
import { DISTRIBUTED_BLOCK_SIZE } from '../src/cli/scan.js';
import { DEFAULT_BLOCK_SIZE } from '../src/services/distributed-scan.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('each registry entry names exactly the commands its module registers', async () => {
  const ctx = createContext();
  for (const entry of COMMANDS) {
    const program = new Command('tocsin');
    (await entry.load()).register(program, ctx);
    assert.deepEqual(program.commands.flatMap((c) => [c.name(), ...c.aliases()]).sort(), [...entry.names].sort());
  }
});

test('commandsFor: a command name loads its module only; help, unknown names and options first load every module', async () => {
  assert.equal((await commandsFor(['scan', '127.0.0.1'])).length, 1);
  assert.equal((await commandsFor(['workers'])).length, 1);
  assert.equal((await commandsFor(['--version'])).length, 0);
  for (const argv of [[], ['--help'], ['help', 'scan'], ['scna'], ['--bogus', 'scan']]) {
    assert.equal((await commandsFor(argv)).length, COMMANDS.length, argv.join(' '));
  }
});

test('--block-size shows the distributed scan default without loading it', () => {
  assert.equal(DISTRIBUTED_BLOCK_SIZE, DEFAULT_BLOCK_SIZE);
});

/** The CLI (sources under tsx) with a module hook that lists every file and package it resolves. */
function runTracing(args: readonly string[]): { status: number | null; stdout: string; loaded: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-lazy-'));
  try {
    const hooks = join(dir, 'hooks.mjs');
    const log = join(dir, 'loaded.txt');
    writeFileSync(hooks, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`);
    const reg = join(dir, 'register.mjs');
    writeFileSync(reg, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    writeFileSync(log, '');
    const r = spawnSync(process.execPath, ['--import', reg, '--import', 'tsx', join(ROOT, 'src/bin/tocsin.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const loaded = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
    return { status: r.status, stdout: r.stdout, loaded };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('`tocsin scan --help` loads the scan command alone; `tocsin --help` lists every command', () => {
  const scan = runTracing(['scan', '--help']);
  assert.equal(scan.status, 0);
  assert.match(scan.stdout, /--from-discovery <file>/);
  assert.match(scan.stdout, new RegExp(`default ${DEFAULT_BLOCK_SIZE}\\)`));
  assert.ok(scan.loaded.some((u) => u.endsWith('/src/cli/scan.ts')), 'the hook saw the scan command');
  const foreign = scan.loaded.filter((u) => /\/src\/cli\/(?!scan\.ts|args\.ts|context\.ts|commands\.ts)[^/]+$|\/node_modules\/(?:fastify|graphile-worker|nodemailer|smtp-server|mailparser)\//.test(u));
  assert.deepEqual(foreign, []);

  const all = runTracing(['--help']);
  assert.equal(all.status, 0);
  for (const e of COMMANDS) assert.match(all.stdout, new RegExp(`^  ${e.names[0]}\\b`, 'm'), e.names[0]);
});
