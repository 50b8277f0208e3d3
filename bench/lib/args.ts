/**
 * What the database benchmarks share: `--name value` flags and a one-off pg client (for CREATE/DROP DATABASE on an
 * admin URL). Benchmarks only; tests have their own in test/helpers/db.ts (it registers node:test hooks).
 */
import pg from 'pg';

export const benchArgs = process.argv.slice(2);

/** The value after `--name`, or undefined. */
export function opt(name: string): string | undefined {
  const i = benchArgs.indexOf(`--${name}`);
  return i === -1 ? undefined : benchArgs[i + 1];
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
