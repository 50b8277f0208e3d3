/**
 * The npm package ships no private key: `npm pack --dry-run` lists no key or certificate file, and no
 * packed text file (nor the lab's source, compiled into dist/lab) contains a PEM private key. The lab makes
 * its keys at first start (lab/cert-store.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../src/platform/paths.js';

const root = packageRoot();
// Spelled in two parts so that this file is no false positive of its own check.
const MARKER = ['PRIVATE', 'KEY-----'].join(' ');
const TEXT = /\.(?:js|cjs|mjs|ts|json|md|csv|txt|sh|pem|crt|key|html|yml|yaml)$/i;

interface PackedFile {
  readonly path: string;
}

function packList(): string[] {
  // --ignore-scripts: "prepare" would rebuild dist; the list is what matters, with dist as it is now.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const parsed = JSON.parse(r.stdout) as ReadonlyArray<{ readonly files: readonly PackedFile[] }>;
  const files = parsed[0]?.files.map((f) => f.path) ?? [];
  assert.ok(files.includes('package.json'), 'the pack list was read');
  return files;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (TEXT.test(e.name)) out.push(p);
  }
  return out;
}

test('npm pack lists no key or certificate file and no packed text file holds a private key', () => {
  const files = packList();
  assert.deepEqual(files.filter((f) => /\.(?:pem|key|crt|p12|pfx)$/i.test(f) || f.startsWith('lab/certs/')), []);
  // When the lab is compiled (npm run build), it is packed, and checked below with everything else.
  if (existsSync(join(root, 'dist', 'lab', 'cert-store.js'))) assert.ok(files.includes('dist/lab/cert-store.js'), 'the compiled lab is in the package');
  const holding = files.filter((f) => TEXT.test(f) && readFileSync(join(root, f), 'latin1').includes(MARKER));
  assert.deepEqual(holding, []);
});

test("the lab's own source embeds no private key", () => {
  const holding = sources(join(root, 'lab'))
    .filter((f) => readFileSync(f, 'latin1').includes(MARKER))
    .map((f) => relative(root, f));
  assert.deepEqual(holding, []);
  assert.equal(existsSync(join(root, 'lab', 'certs')), false, 'lab/certs is gone: keys are made at first start');
});

test('the check sees a private key when there is one (guards against a marker that never matches)', async () => {
  const { generateKeys, privateKeyPem } = await import('../lab/cert-gen.js');
  assert.ok(privateKeyPem((await generateKeys('ec')).privateKey).includes(MARKER));
});
