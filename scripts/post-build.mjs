// Makes the compiled CLI entry executable: npm links bin files but some installs keep the mode.
import { chmodSync, existsSync } from 'node:fs';
const bin = new URL('../dist/src/bin/tocsin.js', import.meta.url);
if (existsSync(bin)) chmodSync(bin, 0o755);

// The web UI's static files (src/web/assets) sit next to the compiled app, where src/web/app.ts reads them.
import { cpSync } from 'node:fs';
const assets = new URL('../src/web/assets/', import.meta.url);
if (existsSync(assets)) cpSync(assets, new URL('../dist/src/web/assets/', import.meta.url), { recursive: true });

// The knowledge base's validated records beside the compiled loader (src/products/exchange/kb/load.ts, KB_CACHE_FILE):
// a command then starts without parsing and validating the CSV files, as long as they are the ones built here.
const kbLoad = new URL('../dist/src/products/exchange/kb/load.js', import.meta.url);
if (existsSync(kbLoad)) {
  const { writeKbCache } = await import(kbLoad.href);
  if (!writeKbCache()) console.error('post-build: the knowledge base in data/exchange does not validate; no cache written (run `tocsin kb` for the problems)');
}

// kysely as one pre-bundled file for the compiled code: its ESM build is ~260 files, and loading them was ~0.3 s of
// CPU at every command start (a third of a `tocsin scan` start; bench/README.md stop 17); one file of the same
// version loads in ~0.03 s. Every `from 'kysely'` under dist/ is pointed at it, so the compiled code shares one copy.
// Without esbuild (a production install) the compiled code keeps importing the package.
{
  const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const { dirname, join, relative, sep } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const dist = fileURLToPath(new URL('../dist/', import.meta.url));
  const vendored = join(dist, 'vendor', 'kysely.js');
  let esbuild = null;
  try {
    esbuild = await import('esbuild');
  } catch {
    // no esbuild: nothing to vendor
  }
  if (esbuild !== null && existsSync(dist)) {
    const entry = fileURLToPath(import.meta.resolve('kysely'));
    await esbuild.build({ entryPoints: [entry], outfile: vendored, bundle: true, format: 'esm', platform: 'node', target: 'node20', legalComments: 'inline', logLevel: 'warning' });
    const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : d.name.endsWith('.js') ? [join(dir, d.name)] : []));
    for (const file of walk(dist)) {
      if (file === vendored) continue;
      const text = readFileSync(file, 'utf8');
      if (!text.includes('kysely')) continue;
      let spec = relative(dirname(file), vendored).split(sep).join('/');
      if (!spec.startsWith('.')) spec = `./${spec}`;
      const out = text.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])kysely\2/g, `$1$2${spec}$2`);
      if (out !== text) writeFileSync(file, out);
    }
  }
}
