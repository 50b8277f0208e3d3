// Makes the compiled CLI entry executable: npm links bin files but some installs keep the mode.
import { chmodSync, existsSync } from 'node:fs';
const bin = new URL('../dist/src/bin/tocsin.js', import.meta.url);
if (existsSync(bin)) chmodSync(bin, 0o755);
