#!/usr/bin/env node
// Builds the self-contained forensics kit: one CommonJS file that runs with plain `node` (Node 20+,
// Windows included), no node_modules needed. Output: dist/tocsin-forensics.cjs (or the path given).
// Usage: node scripts/build-forensics-bundle.mjs [outfile]
import { build } from 'esbuild';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outfile = process.argv[2] ?? `${root}dist/tocsin-forensics.cjs`;
await build({
  entryPoints: [`${root}src/forensics/standalone.ts`],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  banner: { js: '#!/usr/bin/env node\n// Tocsin forensics kit (Apache-2.0): offline compromise assessment for Microsoft Exchange. Run: node tocsin-forensics.cjs --help' },
  logLevel: 'warning',
});
console.log(`${outfile} (${statSync(outfile).size} bytes)`);
