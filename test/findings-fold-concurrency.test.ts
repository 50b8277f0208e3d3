/**
 * The fold's cursors are ids, handed out at insert time: a writer still open during a fold must not have its rows
 * skipped. The fold waits (briefly) for writers to commit before fixing its upper bounds, else defers new evidence.
 */
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import pg from 'pg';
import { foldFindings } from '../src/services/findings.js';
import { testEachBackend } from './helpers/db.js';

testEachBackend('findings fold: a writer open during a fold is not skipped (deferred, then folded after it commits)', async ({ database, url }) => {
  const db = database.db;
  const scan = (await sql<{ id: number }>`INSERT INTO scans (targets, ports) VALUES ('[]'::jsonb, '{443}') RETURNING id`.execute(db)).rows[0];
  assert.ok(scan);
  // scan_month: the partition key (migration 0023), the scan's start month
  const attempt = (ip: string) => sql`INSERT INTO scan_attempts (scan_id, ip, port, outcome, attempted_at, scan_month)
    SELECT id, ${ip}::inet, 443, 'refused', now(), date_trunc('month', started_at AT TIME ZONE 'UTC')::date FROM scans WHERE id = ${scan.id}`;

  // A writer holds a low id, uncommitted.
  const writer = new pg.Client({ connectionString: url });
  await writer.connect();
  try {
    await writer.query('BEGIN');
    await writer.query(`INSERT INTO scan_attempts (scan_id, ip, port, outcome, attempted_at, scan_month)
      SELECT id, '127.0.0.1', 443, 'refused', now(), date_trunc('month', started_at AT TIME ZONE 'UTC')::date FROM scans WHERE id = $1`, [scan.id]);
    // Another writer commits a higher id meanwhile.
    await attempt('127.0.0.2').execute(db);

    const first = await foldFindings(db);
    assert.equal(first.deferred, true, 'the fold must not fix bounds past an uncommitted writer');
    const cur1 = (await sql<{ t: number }>`SELECT last_attempt_id AS t FROM findings_fold_state WHERE id = 1`.execute(db)).rows[0];
    assert.equal(cur1?.t, 0, 'no cursor moved past the open writer');

    await writer.query('COMMIT');
  } finally {
    await writer.end();
  }
  const second = await foldFindings(db);
  assert.equal(second.deferred, false);
  const max = (await sql<{ m: number }>`SELECT max(id) AS m FROM scan_attempts`.execute(db)).rows[0];
  const cur2 = (await sql<{ t: number }>`SELECT last_attempt_id AS t FROM findings_fold_state WHERE id = 1`.execute(db)).rows[0];
  assert.equal(cur2?.t, max?.m, 'both attempts folded once the writer committed');
});
