import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MIGRATIONS } from './index.js';

test('every migration file is listed, once, in file-name order', () => {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}-[a-z0-9-]+\.ts$/.test(f))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
  assert.ok(files.length > 0);
  assert.deepEqual(MIGRATIONS.map((m) => m.id), files);
  assert.equal(new Set(MIGRATIONS.map((m) => m.id)).size, MIGRATIONS.length);
});
