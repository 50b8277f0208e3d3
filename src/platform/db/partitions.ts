/**
 * Monthly partitions of `observations` and `scan_attempts` (migration 0023 has the layout and why).
 *
 * ensurePartitions creates the months up to next month (contiguous, moving any of their rows out of the default
 * partition first); maintainPartitions does it at most once per process and UTC day, so scans, imports and workers
 * can call it at every start for the price of a Map lookup. Missing it is not an error for writers: a row of a month
 * without a partition lands in the default partition, and the next maintenance moves it into its month.
 */
import { sql, type Kysely } from 'kysely';
import type { DbSchema } from './schema.js';

/** The tables partitioned by month, with their partition key. */
export const PARTITIONED = { observations: 'scanned_at', scan_attempts: 'scan_month' } as const;
export type PartitionedTable = keyof typeof PARTITIONED;

export interface MonthPartition {
  /** The partition's table name, `<table>_pYYYYMM`. */
  readonly name: string;
  /** First day of the month, UTC, `YYYY-MM-DD`. */
  readonly month: string;
}

/** Creates the months missing up to `through`'s month (default: next month); the number created. */
export async function ensurePartitions(db: Kysely<DbSchema>, through: Date = nextMonth(new Date())): Promise<number> {
  const r = await sql<{ n: number }>`SELECT tocsin_ensure_partitions(${utcDay(through)}::date) AS n`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

const maintainedOn = new WeakMap<Kysely<DbSchema>, string>();

/** ensurePartitions at most once per UTC day for this database handle (per process). */
export async function maintainPartitions(db: Kysely<DbSchema>, now: Date = new Date()): Promise<void> {
  const day = utcDay(now);
  if (maintainedOn.get(db) === day) return;
  await ensurePartitions(db, nextMonth(now));
  maintainedOn.set(db, day);
}

/** The monthly partitions of a table, oldest first (the archive and default partitions are not listed). */
export async function monthPartitions(db: Kysely<DbSchema>, table: PartitionedTable): Promise<MonthPartition[]> {
  const r = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = ${table}::regclass ORDER BY c.relname`.execute(db);
  const re = new RegExp(`^${table}_p(\\d{4})(\\d{2})$`);
  const out: MonthPartition[] = [];
  for (const { name } of r.rows) {
    const m = re.exec(name);
    if (m !== null) out.push({ name, month: `${m[1]}-${m[2]}-01` });
  }
  return out;
}

/** Where a stored row of `table` with id `id` lives (its partition's name), or null when there is no such row. */
export async function partitionOf(db: Kysely<DbSchema>, table: PartitionedTable, id: number): Promise<string | null> {
  const r = await sql<{ p: string }>`SELECT tableoid::regclass::text AS p FROM ${sql.table(table)} WHERE id = ${id}`.execute(db);
  return r.rows[0]?.p ?? null;
}

/** The first day of the month after `month` (a `YYYY-MM-DD` first of month), as a Date at 00:00 UTC. */
export function monthEnd(month: string): Date {
  const d = new Date(`${month}T00:00:00Z`);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
}

function nextMonth(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
}

function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}
