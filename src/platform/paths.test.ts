import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dataPath, findPackageRoot, packageRoot } from './paths.js';

test('packageRoot finds the package.json named tocsin', () => {
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
  assert.equal(pkg.name, 'tocsin');
  assert.ok(existsSync(dataPath('exchange', 'builds.csv')));
});

test('walks past other package.json files (compiled layout dist/src/platform)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-paths-'));
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'tocsin' }));
    mkdirSync(join(dir, 'dist', 'src', 'platform'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'package.json'), JSON.stringify({ name: 'something-else' }));
    writeFileSync(join(dir, 'dist', 'src', 'package.json'), '{ not json');
    assert.equal(findPackageRoot(join(dir, 'dist', 'src', 'platform')), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no tocsin package above: a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-paths-'));
  try {
    assert.throws(() => findPackageRoot(dir), /no package.json named "tocsin"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
