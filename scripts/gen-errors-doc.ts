/**
 * Writes docs/errors.md from the error registry (src/core/errors.ts).
 * Usage: npx tsx scripts/gen-errors-doc.ts [--check]   (--check: exit 1 if the file is out of date)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderErrorCatalogue } from '../src/core/errors-doc.js';

const target = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
const text = renderErrorCatalogue();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    current = '';
  }
  if (current !== text) {
    console.error('docs/errors.md is out of date: run `npx tsx scripts/gen-errors-doc.ts`');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.log('wrote docs/errors.md');
}
