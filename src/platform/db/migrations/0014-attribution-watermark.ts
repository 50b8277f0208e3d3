/**
 * Migration 0014: a refresh of the stored attributions writes only the answers that changed (issue 8 §6).
 *
 * - `attribution_watermark`: one row; `rev` is the registry revision the last complete refresh reached. Every
 *   address was answered at that revision, so a row is stale by revision only when greatest(its registry_rev,
 *   the watermark) is below the current revision. A refresh after a registry change that moves 1% of the
 *   addresses then rewrites 1% of the rows, not every row to bump its revision. `attributions.registry_rev`
 *   becomes "the revision this answer was last computed differently at" (still the revision it was written at).
 * - `attributions.answer_hash`: a digest of what was stored (owner, rule, confidence, evidence, tie, candidates),
 *   computed by the writer, so a recomputed answer is compared without reading the jsonb columns back. Null on
 *   rows written before this migration: they differ once and are rewritten.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE attribution_watermark (
      id   integer PRIMARY KEY CHECK (id = 1),
      rev  bigint NOT NULL
    )`.execute(db);
  // 0: no complete refresh yet (each row's own registry_rev decides, as before).
  await sql`INSERT INTO attribution_watermark (id, rev) VALUES (1, 0)`.execute(db);
  await sql`ALTER TABLE attributions ADD COLUMN answer_hash text`.execute(db);
}
