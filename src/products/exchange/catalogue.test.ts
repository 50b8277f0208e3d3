import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderDetectorCatalogue } from './catalogue.js';
import { exchange } from './index.js';

const DETECTORS = exchange.detectors;
const PROBES = exchange.probes;

test('docs/detectors.md is generated from the Exchange product and up to date (run: npx tsx scripts/gen-detector-docs.ts)', () => {
  const committed = readFileSync(new URL('../../../docs/detectors.md', import.meta.url), 'utf8');
  assert.equal(committed, renderDetectorCatalogue(DETECTORS, PROBES));
});

test('the catalogue lists every detector and probe, and table cells survive pipes in metadata', () => {
  const text = renderDetectorCatalogue(DETECTORS, PROBES);
  for (const d of DETECTORS) assert.ok(text.includes(`### ${d.id}`), d.id);
  for (const p of PROBES) assert.ok(text.includes(`\`${p.path}\``), p.path);
  const first = DETECTORS[0];
  assert.ok(first !== undefined);
  const odd = renderDetectorCatalogue([{ ...first, description: 'a | b\nc' }], PROBES);
  assert.ok(odd.includes('a \\| b c'));
});
