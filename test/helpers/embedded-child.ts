/**
 * Child process for the embedded-server tests: opens the embedded database of TOCSIN_HOME=argv[2],
 * prints one JSON line {pid, port, ok} on stdout, then waits to be killed (the tests send SIGKILL).
 */
import { sql } from 'kysely';
import { openDatabase } from '../../src/platform/db/connect.js';

const home = process.argv[2];
if (home === undefined) throw new Error('usage: embedded-child.ts HOME');
const database = await openDatabase({ home, databaseUrl: null });
const r = await sql<{ ok: number }>`SELECT 1 AS ok`.execute(database.db);
process.stdout.write(`${JSON.stringify({ pid: process.pid, port: new URL(database.url).port, ok: r.rows[0]?.ok })}\n`);
setInterval(() => undefined, 60_000);
