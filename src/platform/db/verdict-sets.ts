/**
 * Verdict sets (migration 0028): each distinct (vulnerable, indeterminate) pair of CVE ids is stored once and
 * assessment rows point to it. A knowledge base gives a few hundred pairs, so writers upsert the distinct pairs of
 * a batch once and remember their ids for the life of the process (sets are never changed or deleted).
 *
 * Call it on the database, not inside a long transaction: an upsert inside a feed import's transaction would hold
 * the new key's index entry until the import commits (a concurrent scan writing the same pair would wait for it),
 * and an id remembered from a transaction that then rolled back would point nowhere. On the database each upsert
 * commits at once; handed a transaction, the ids are remembered for that transaction object only.
 */
import { sql, type Kysely } from 'kysely';
import type { DbSchema } from './schema.js';
import { jsonForPostgres } from './scan-store.js';

export interface VerdictPair {
  readonly vulnerable: readonly string[];
  readonly indeterminate: readonly string[];
}

/** Set id by content, per database handle (a test process opens many databases; ids differ between them). */
const known = new WeakMap<object, Map<string, number>>();

/**
 * contentOf's text per (vulnerable, indeterminate) array pair, by identity: scan records carry the knowledge
 * base's frozen lists (one pair per build), so a scan asks for the same few hundred pairs thousands of times and
 * the JSON text of each is made once. Weak: a pair dropped with its knowledge base goes with it.
 */
const textOf = new WeakMap<readonly string[], WeakMap<readonly string[], string>>();

/** The pair's identity in this process: the arrays in order (the stored order is what readers get back). */
export function contentOf(p: VerdictPair): string {
  // Only frozen arrays are remembered: a mutable one could change after its text was taken.
  if (!Object.isFrozen(p.vulnerable) || !Object.isFrozen(p.indeterminate)) return JSON.stringify([p.vulnerable, p.indeterminate]);
  let byIndeterminate = textOf.get(p.vulnerable);
  if (byIndeterminate === undefined) {
    byIndeterminate = new WeakMap();
    textOf.set(p.vulnerable, byIndeterminate);
  }
  let text = byIndeterminate.get(p.indeterminate);
  if (text === undefined) {
    text = JSON.stringify([p.vulnerable, p.indeterminate]);
    byIndeterminate.set(p.indeterminate, text);
  }
  return text;
}

/**
 * The verdict set id of each pair, in order: stored ones from memory, the others upserted in one statement
 * (in key order, so concurrent writers never wait on each other's keys in opposite orders) and read back.
 */
export async function verdictSetIds(db: Kysely<DbSchema>, pairs: readonly VerdictPair[]): Promise<number[]> {
  let ids = known.get(db);
  if (ids === undefined) {
    ids = new Map();
    known.set(db, ids);
  }
  const keys = pairs.map(contentOf);
  const missing = new Map<string, VerdictPair>();
  keys.forEach((k, i) => {
    if (!ids.has(k) && !missing.has(k)) missing.set(k, pairs[i] as VerdictPair);
  });
  if (missing.size > 0) {
    const input = jsonForPostgres([...missing.values()].map((p, ord) => ({ ord, v: p.vulnerable, i: p.indeterminate })));
    await sql`
      INSERT INTO verdict_sets (key, vulnerable, indeterminate)
      SELECT tocsin_verdict_key(v, i), v, i FROM jsonb_to_recordset(${input}::jsonb) AS t (ord int, v text[], i text[])
      ORDER BY 1
      ON CONFLICT (key) DO NOTHING`.execute(db);
    // A second statement, not RETURNING: a set another writer committed meanwhile is seen by a new snapshot only.
    const r = await sql<{ ord: number; id: string | number }>`
      SELECT t.ord, s.id FROM jsonb_to_recordset(${input}::jsonb) AS t (ord int, v text[], i text[])
      JOIN verdict_sets s ON s.key = tocsin_verdict_key(t.v, t.i)`.execute(db);
    const order = [...missing.keys()];
    for (const row of r.rows) ids.set(order[row.ord] as string, Number(row.id));
  }
  return keys.map((k) => {
    const id = ids.get(k);
    if (id === undefined) throw new Error(`verdict set not stored: ${k.slice(0, 80)}`);
    return id;
  });
}
