/**
 * Writes docs/detectors.md from the Exchange product's detectors and probes (see src/products/exchange/catalogue.ts).
 * Usage: npx tsx scripts/gen-detector-docs.ts [--check]   (--check: exit 1 if the file is out of date)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderDetectorCatalogue } from '../src/products/exchange/catalogue.js';
import { exchange } from '../src/products/exchange/index.js';

const target = fileURLToPath(new URL('../docs/detectors.md', import.meta.url));
const text = renderDetectorCatalogue(exchange.detectors, exchange.probes);
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    current = '';
  }
  if (current !== text) {
    console.error('docs/detectors.md is out of date: run `npx tsx scripts/gen-detector-docs.ts`');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.log('wrote docs/detectors.md');
}
