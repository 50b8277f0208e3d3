/**
 * Migration 0023: `observations` and `scan_attempts` partitioned by month (issue 11 §5), so that retention drops
 * whole months instead of deleting row by row, and what is not history stays small.
 *
 * Partition keys, and why they keep the guarantees exact:
 * - `observations` by RANGE (scanned_at), UTC months. PostgreSQL wants the partition key in every unique constraint,
 *   so the primary key becomes (id, scanned_at). Ids still come from one sequence (`observations_id_seq`, the name
 *   the scan store's nextval() uses), so `id` alone stays unique in practice; nothing does ON CONFLICT on it.
 *   The UNIQUE (attempt_id) becomes a plain index: the scan store creates an observation only for an attempt its
 *   own statement inserted, so one observation per attempt holds by construction.
 * - `scan_attempts` by RANGE (scan_month): the UTC month the SCAN started in, written by the scan store from
 *   `scans.started_at` (never updated). scan_month is a function of scan_id, so UNIQUE (scan_id, ip, port,
 *   scan_month) is exactly the old UNIQUE (scan_id, ip, port): the exactly-once guarantee of resume and of the
 *   distributed workers (ON CONFLICT (scan_id, ip, port, scan_month)) is unchanged, and a scan that runs across a
 *   month boundary keeps all its attempts in one partition. Partitioning by attempted_at would have made the same
 *   (scan, ip, port) unique per month only. No default: an insert that does not say its scan's month fails loudly
 *   rather than landing in the wrong month.
 *
 * Foreign keys: an FK to a partitioned table must name its whole key, i.e. every referencing table would carry
 * scanned_at (assessments, observation_responses, feed_observations) or scan_month (observations.attempt_id), and
 * every writer of them would change; and DETACH refuses a partition that referencing rows still point at, so the
 * cascades would not help retention anyway. So these FKs are DROPPED: assessments, observation_responses and
 * feed_observations → observations(id), and observations.attempt_id → scan_attempts(id). Their ON DELETE actions
 * were only ever exercised by `tocsin db prune`, which now does them itself (retention-store.ts: dependent rows of a
 * removed observation are deleted, a feed row's link set to null). scan_attempts → scans stays (scans are not
 * partitioned; ON DELETE CASCADE still holds).
 *
 * Layout of each table's partitions (names are the contract the maintenance function and retention read):
 * - `<t>_pYYYYMM`: one per month, contiguous, from the oldest month kept as a month up to next month;
 * - `<t>_archive`: FROM (MINVALUE) TO (the oldest month's start): rows older than every monthly partition; this is
 *   where retention moves the rows it must keep (latest observation per ip:port, evidence named by findings, ...)
 *   when it drops their month, and where old rows land: the migration starts the months at the oldest SCANNED
 *   observation (at most 24 months back), so an imported feed report from 2019 does not make 80 empty tables;
 * - `<t>_default`: anything past the newest month (a skewed clock, a feed dated in the future): an insert never
 *   fails for want of a partition. Kept near empty: creating a month moves its rows out of it first (ATTACH
 *   validates the default partition by scanning it).
 * `tocsin_ensure_partitions(through)` creates the missing months up to `through` (contiguous, so a database idle
 * for a quarter fills the gap), under an advisory lock so concurrent workers create each month once; callers go
 * through platform/db/partitions.ts (at most once per process per day). A month is a standalone table ATTACHed
 * afterwards: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent where CREATE TABLE ... PARTITION OF takes ACCESS
 * EXCLUSIVE, so running scans are not blocked.
 *
 * Conversion of existing data, in this migration's one transaction: the old table is renamed, the partitioned one
 * created LIKE it (columns, defaults, checks, identity), its partitions made, every row copied with its id, the new
 * identity sequence set to where the old one was (so ids continue, and the findings fold's attempt watermark stays
 * valid), the old table dropped, the sequence renamed to the old name, then the indexes built once over the loaded
 * partitions. It holds ACCESS EXCLUSIVE locks on both tables for its duration (seconds per million rows).
 */
import { sql, type Kysely } from 'kysely';

/** Months before the migration's month that still get a partition of their own; older rows go to the archive. */
const MONTHS_BACK = 24;

export async function up(db: Kysely<unknown>): Promise<void> {
  await createFunctions(db);

  // ---- observations
  await dropForeignKeysTo(db, 'observations');
  await sql`ALTER TABLE observations RENAME TO observations_old`.execute(db);
  await sql`
    CREATE TABLE observations (LIKE observations_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY)
    PARTITION BY RANGE (scanned_at)`.execute(db);
  // Months start with our own scanning: one feed report from years back does not make years of empty months.
  const obsFirst = await firstMonth(db, sql`SELECT min(scanned_at AT TIME ZONE 'UTC') AS t FROM observations_old WHERE scan_id IS NOT NULL`);
  await sql`SELECT tocsin_partition_skeleton('observations', ${obsFirst}::date)`.execute(db);
  await sql`INSERT INTO observations SELECT * FROM observations_old`.execute(db);
  await carrySequence(db, 'observations');

  // ---- scan_attempts
  await dropForeignKeysTo(db, 'scan_attempts');
  await sql`ALTER TABLE scan_attempts RENAME TO scan_attempts_old`.execute(db);
  await sql`
    CREATE TABLE scan_attempts (
      LIKE scan_attempts_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY,
      scan_month date NOT NULL
    ) PARTITION BY RANGE (scan_month)`.execute(db);
  const attFirst = await firstMonth(db, sql`SELECT min(s.started_at AT TIME ZONE 'UTC') AS t FROM scans s WHERE EXISTS (SELECT 1 FROM scan_attempts_old a WHERE a.scan_id = s.id)`);
  await sql`SELECT tocsin_partition_skeleton('scan_attempts', ${attFirst}::date)`.execute(db);
  await sql`
    INSERT INTO scan_attempts OVERRIDING SYSTEM VALUE
    SELECT a.*, date_trunc('month', s.started_at AT TIME ZONE 'UTC')::date
    FROM scan_attempts_old a JOIN scans s ON s.id = a.scan_id`.execute(db);
  await carrySequence(db, 'scan_attempts');

  // Indexes, once over the loaded partitions (the same as before, with the partition key where uniqueness needs it).
  await sql`ALTER TABLE observations ADD CONSTRAINT observations_pkey PRIMARY KEY (id, scanned_at)`.execute(db);
  // Not unique (a unique index must hold scanned_at); named as the unique key it replaces, so a later
  // `CREATE UNIQUE INDEX IF NOT EXISTS observations_attempt_id_key` (migration 0024) finds it and does nothing.
  await sql`CREATE INDEX observations_attempt_id_key ON observations (attempt_id) WHERE attempt_id IS NOT NULL`.execute(db);
  // Only scan rows have a scan_id; lookups are by a value (`scan_id = $1`).
  await sql`CREATE INDEX observations_scan_ip_port ON observations (scan_id, ip, port) WHERE scan_id IS NOT NULL`.execute(db);
  await sql`CREATE INDEX observations_ip_port_time ON observations (ip, port, scanned_at DESC)`.execute(db);
  await sql`CREATE INDEX observations_scanned_at ON observations (scanned_at)`.execute(db);
  // A database that applied migration 0024 before this one had its statement trigger (the set-based cascade to
  // assessments and feed rows) on the table just dropped: it goes on the partitioned table.
  await sql`
    DO $$
    BEGIN
      IF to_regproc('tocsin_observations_deleted') IS NOT NULL THEN
        CREATE TRIGGER observations_deleted AFTER DELETE ON observations
          REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tocsin_observations_deleted();
      END IF;
    END $$`.execute(db);
  await sql`ALTER TABLE scan_attempts ADD CONSTRAINT scan_attempts_pkey PRIMARY KEY (id, scan_month)`.execute(db);
  await sql`ALTER TABLE scan_attempts ADD CONSTRAINT scan_attempts_scan_id_ip_port_key UNIQUE (scan_id, ip, port, scan_month)`.execute(db);
  await sql`CREATE INDEX scan_attempts_attempted_at ON scan_attempts (attempted_at)`.execute(db);
  await sql`ALTER TABLE scan_attempts ADD CONSTRAINT scan_attempts_scan_id_fkey FOREIGN KEY (scan_id) REFERENCES scans (id) ON DELETE CASCADE`.execute(db);
}

/** The first month to give its own partition: the data's oldest, at most MONTHS_BACK back, this month if empty. */
async function firstMonth(db: Kysely<unknown>, oldest: ReturnType<typeof sql>): Promise<string> {
  const r = await sql<{ m: string }>`
    WITH o AS (${oldest}), now_m AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS m)
    SELECT to_char(greatest(coalesce(date_trunc('month', (SELECT t FROM o)), (SELECT m FROM now_m)),
                            (SELECT m FROM now_m) - make_interval(months => ${MONTHS_BACK})), 'YYYY-MM-DD') AS m`.execute(db);
  return (r.rows[0] as { m: string }).m;
}

/** Drops every foreign key that references `table` (names vary with history; the catalogue knows them). */
async function dropForeignKeysTo(db: Kysely<unknown>, table: 'observations' | 'scan_attempts'): Promise<void> {
  await sql`
    DO $$
    DECLARE c record;
    BEGIN
      FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
               WHERE contype = 'f' AND confrelid = ${sql.lit(table)}::regclass LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
      END LOOP;
    END $$`.execute(db);
}

/** New identity sequence continues where the old table's stopped; old table dropped; sequence takes the old name. */
async function carrySequence(db: Kysely<unknown>, table: 'observations' | 'scan_attempts'): Promise<void> {
  const old = `${table}_old`;
  await sql`
    DO $$
    DECLARE
      old_seq text := pg_get_serial_sequence(${sql.lit(old)}, 'id');
      new_seq text := pg_get_serial_sequence(${sql.lit(table)}, 'id');
      last bigint; called boolean;
    BEGIN
      EXECUTE format('SELECT last_value, is_called FROM %s', old_seq) INTO last, called;
      -- never below an id already stored (rows copied with their ids)
      SELECT greatest(last, coalesce(max(id), 1)), called OR max(id) IS NOT NULL INTO last, called FROM ${sql.raw(table)};
      PERFORM setval(new_seq, last, called);
      EXECUTE format('DROP TABLE %I', ${sql.lit(old)});
      EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', new_seq, ${sql.lit(`${table}_id_seq`)});
    END $$`.execute(db);
}

async function createFunctions(db: Kysely<unknown>): Promise<void> {
  // One month of one table. Rows of that month waiting in the default partition are moved in first (ATTACH would
  // refuse them). Returns false when the month exists already.
  await sql`
    CREATE FUNCTION tocsin_add_month_partition(parent text, m date) RETURNS boolean LANGUAGE plpgsql AS $$
    DECLARE
      part text := parent || '_p' || to_char(m, 'YYYYMM');
      dflt text := parent || '_default';
      key text := CASE parent WHEN 'observations' THEN 'scanned_at' WHEN 'scan_attempts' THEN 'scan_month' END;
      -- timestamptz bounds spelled in UTC whatever the session's TimeZone; ISO dates whatever its DateStyle
      sfx text := CASE parent WHEN 'observations' THEN ' 00:00:00+00' ELSE '' END;
      lo text := to_char(m, 'YYYY-MM-DD') || sfx;
      hi text := to_char(m + interval '1 month', 'YYYY-MM-DD') || sfx;
    BEGIN
      IF key IS NULL THEN RAISE EXCEPTION 'tocsin does not partition %', parent; END IF;
      IF m <> date_trunc('month', m) THEN RAISE EXCEPTION 'not the first day of a month: %', m; END IF;
      IF to_regclass(part) IS NOT NULL THEN RETURN false; END IF;
      EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
      IF to_regclass(dflt) IS NOT NULL THEN
        EXECUTE format('LOCK TABLE %I IN SHARE ROW EXCLUSIVE MODE', dflt);
        EXECUTE format('WITH d AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO %I SELECT * FROM d',
                       dflt, key, lo, key, hi, part);
      END IF;
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
      RETURN true;
    END $$`.execute(db);

  // The months up to and including through's month, contiguous after the newest one there is.
  await sql`
    CREATE FUNCTION tocsin_ensure_partitions(through date) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE
      parent text; m date; newest date; added integer := 0;
      last_m date := date_trunc('month', through)::date;
    BEGIN
      -- one creator at a time (workers on many machines call this); the loser finds the months there
      PERFORM pg_advisory_xact_lock(7305113223);
      FOREACH parent IN ARRAY ARRAY['observations', 'scan_attempts'] LOOP
        SELECT max(to_date(substring(c.relname FROM '_p([0-9]{6})$'), 'YYYYMM')) INTO newest
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = parent::regclass AND c.relname ~ '_p[0-9]{6}$';
        m := coalesce(newest + interval '1 month', last_m)::date;
        -- a clock far off must not create hundreds of tables: at most three years ahead of the newest month
        WHILE m <= last_m AND m <= coalesce(newest, last_m) + interval '36 months' LOOP
          IF tocsin_add_month_partition(parent, m) THEN added := added + 1; END IF;
          m := (m + interval '1 month')::date;
        END LOOP;
      END LOOP;
      RETURN added;
    END $$`.execute(db);

  // The initial layout of one table: archive before first, a month each from first to next month, default.
  await sql`
    CREATE FUNCTION tocsin_partition_skeleton(parent text, first date) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
      sfx text := CASE parent WHEN 'observations' THEN ' 00:00:00+00' ELSE '' END;
      m date := first;
      next_m date := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date;
    BEGIN
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (MINVALUE) TO (%L)',
                     parent || '_archive', parent, to_char(first, 'YYYY-MM-DD') || sfx);
      WHILE m <= next_m LOOP
        PERFORM tocsin_add_month_partition(parent, m);
        m := (m + interval '1 month')::date;
      END LOOP;
      EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', parent || '_default', parent);
    END $$`.execute(db);
}
