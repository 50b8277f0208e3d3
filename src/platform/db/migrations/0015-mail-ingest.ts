/**
 * Migration 0015: delivery tracking from a mailbox, and follow-ups (issue 9 §2; rules in src/campaigns/dsn.ts,
 * queries in mail-store.ts, use cases in services/mail-ingest.ts and services/follow-up.ts).
 *
 * - `mail_ingested`: every mail `tocsin mail ingest` has read, by the SHA-256 of its bytes (unique) and its
 *   Message-ID, with what it was and what it did: reading the same mailbox again skips them, so it changes nothing.
 *   The Message-ID is indexed, not unique: a forged copy must not be able to block the real one by arriving first,
 *   and the ingest checks both.
 * - `campaign_inbound`: what came back for one campaign message: a bounce (DSN, action failed) with the recipient,
 *   status and diagnostic and what it caused (next contact queued / bounced / noted), a delay (DSN, noted only), a
 *   reply or an auto-reply (sender, date, subject, the first 4 KiB of text: hostile, sanitised when shown).
 * A follow-up campaign needs no table: its selection (jsonb) names the campaign it follows (`followUpOf`), and
 * each of its messages follows that campaign's message to the same organisation (one per organisation, by key).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE mail_ingested (
      id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      sha256           text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
      mail_message_id  text,
      kind             text NOT NULL CHECK (kind IN ('dsn', 'reply', 'auto-reply', 'bounce-unparsed', 'other', 'unreadable')),
      -- the campaign message it was matched to (null: none of ours)
      message_id       bigint REFERENCES campaign_messages (id) ON DELETE SET NULL,
      effect           text NOT NULL,
      location         text NOT NULL,
      bytes            integer NOT NULL,
      ingested_at      timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX mail_ingested_message_id ON mail_ingested (mail_message_id) WHERE mail_message_id IS NOT NULL`.execute(db);

  await sql`
    CREATE TABLE campaign_inbound (
      id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      message_id       bigint NOT NULL REFERENCES campaign_messages (id) ON DELETE CASCADE,
      mail_id          bigint NOT NULL REFERENCES mail_ingested (id) ON DELETE CASCADE,
      kind             text NOT NULL CHECK (kind IN ('bounce', 'delay', 'reply', 'auto-reply', 'dsn-other')),
      -- the chain step the message was on when this came back
      step             integer NOT NULL,
      from_addr        text,
      subject          text,
      mail_date        timestamptz,
      excerpt          text,
      final_recipient  text,
      dsn_action       text,
      dsn_status       text,
      diagnostic       text,
      effect           text NOT NULL,
      at               timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX campaign_inbound_message ON campaign_inbound (message_id, id)`.execute(db);
}
