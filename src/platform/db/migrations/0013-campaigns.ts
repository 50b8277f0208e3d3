/**
 * Migration 0013: warning campaigns and their durable outbox (issue 9 §2; rules in src/campaigns, queries in
 * campaign-store.ts).
 *
 * - `campaigns`: what was selected (jsonb), the template, who approved it and when; cancelled ones stay.
 * - `campaign_messages`: THE outbox, one row per (campaign, organisation) by a unique key, made when the
 *   campaign is created: the exposures the organisation will be told about and its recipient chain are frozen
 *   there (a preview shows what will be sent; a later registry change does not change a queued warning), with the
 *   ticket and the Message-ID we generated (both unique). `state` follows src/campaigns/outbox.ts. A row is set
 *   `sending` with its attempt number in a committed transaction BEFORE the SMTP transaction starts, so a sender
 *   killed at any moment leaves either `queued`/`deferred` (nothing went out) or `sending` (maybe it did: the next
 *   `send` marks it `uncertain`, and it is never resent on its own).
 * - `campaign_attempts`: every SMTP transaction tried (step of the chain, recipients, reply), append-only in spirit;
 *   `outcome` null = in flight (or killed in flight).
 * - `campaign_ticket_seq`: the NNNNNNNN of the tickets (YYYYMMDD-NNNNNNNN), unique across campaigns.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE SEQUENCE campaign_ticket_seq MINVALUE 1 MAXVALUE 99999999 CYCLE`.execute(db);
  await sql`
    CREATE TABLE campaigns (
      id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      name              text NOT NULL CHECK (name <> ''),
      selection         jsonb NOT NULL,
      template          text NOT NULL,
      language_default  text NOT NULL,
      state             text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'approved', 'cancelled')),
      -- exposures of the selection whose address no organisation holds (not warned: the review queue's)
      unattributed      integer NOT NULL DEFAULT 0,
      created_at        timestamptz NOT NULL DEFAULT now(),
      created_by        text NOT NULL,
      approved_at       timestamptz,
      approved_by       text,
      cancelled_at      timestamptz,
      cancelled_by      text
    )`.execute(db);

  await sql`
    CREATE TABLE campaign_messages (
      id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      campaign_id         bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
      -- no foreign key: the warning and its history stay when the organisation is removed
      org_id              bigint NOT NULL,
      org_name            text NOT NULL,
      ticket              text NOT NULL UNIQUE CHECK (ticket ~ '^[0-9]{8}-[0-9]{8}$'),
      message_id          text NOT NULL UNIQUE,
      language            text NOT NULL,
      exposures           jsonb NOT NULL,
      -- [{source, emails: [...]}, ...]: tried in order, the next one after a 5xx
      chain               jsonb NOT NULL,
      step                integer NOT NULL DEFAULT 0 CHECK (step >= 0),
      state               text NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'bounced', 'uncertain',
                                                         'acknowledged', 'suppressed', 'cancelled')),
      reason              text,
      attempts            integer NOT NULL DEFAULT 0,
      transient_failures  integer NOT NULL DEFAULT 0,
      next_attempt_at     timestamptz,
      smtp_reply          text,
      sent_to             text[],
      sent_at             timestamptz,
      acknowledged_at     timestamptz,
      updated_at          timestamptz NOT NULL DEFAULT now(),
      UNIQUE (campaign_id, org_id)
    )`.execute(db);
  await sql`CREATE INDEX campaign_messages_pending ON campaign_messages (campaign_id, id) WHERE state IN ('queued', 'deferred', 'sending')`.execute(db);

  await sql`
    CREATE TABLE campaign_attempts (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      message_id   bigint NOT NULL REFERENCES campaign_messages (id) ON DELETE CASCADE,
      attempt      integer NOT NULL,
      step         integer NOT NULL,
      recipients   text[] NOT NULL,
      started_at   timestamptz NOT NULL,
      finished_at  timestamptz,
      -- null: in flight, or its sender was killed in flight
      outcome      text CHECK (outcome IN ('accepted', 'transient', 'permanent', 'uncertain', 'killed')),
      reply        text,
      UNIQUE (message_id, attempt)
    )`.execute(db);
}
