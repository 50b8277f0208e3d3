/**
 * Migration 0020: one-time account tokens (issue 10 §2: invitation and password reset by e-mail).
 *
 * - `account_tokens`: only the SHA-256 of the token is stored (the e-mail holds the token; a leaked database gives
 *   no usable link). `purpose` invite | reset; `expires_at` set by the service (72 h invite, 1 h reset); `used_at`
 *   set once by the single UPDATE that redeems it (so two clicks racing redeem it once). Counted per user and
 *   purpose over the last hour to throttle reset mails, hence the index.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE account_tokens (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      token_sha256  text NOT NULL UNIQUE,
      user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      purpose       text NOT NULL CHECK (purpose IN ('invite', 'reset')),
      created_at    timestamptz NOT NULL DEFAULT now(),
      expires_at    timestamptz NOT NULL,
      used_at       timestamptz
    )`.execute(db);
  await sql`CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose, created_at)`.execute(db);
}
