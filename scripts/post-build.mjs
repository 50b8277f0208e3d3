// Makes the compiled CLI entry executable: npm links bin files but some installs keep the mode.
import { chmodSync, existsSync } from 'node:fs';
const bin = new URL('../dist/src/bin/tocsin.js', import.meta.url);
if (existsSync(bin)) chmodSync(bin, 0o755);

// The web UI's static files (src/web/assets) sit next to the compiled app, where src/web/app.ts reads them.
import { cpSync } from 'node:fs';
const assets = new URL('../src/web/assets/', import.meta.url);
if (existsSync(assets)) cpSync(assets, new URL('../dist/src/web/assets/', import.meta.url), { recursive: true });
