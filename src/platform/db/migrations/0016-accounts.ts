/**
 * Migration 0016: web accounts and access (issue 10 §2).
 *
 * - `users`: local accounts. `email` is stored lower-case (unique); `role` admin | analyst | org; an org user has
 *   the organisation it may see (`org_id`, required for that role only, checked here so no code path can create
 *   an org user who sees everything). `password_hash` is an argon2id PHC string; `disabled` keeps the row (the
 *   audit log names it) while refusing every login and token.
 * - `api_tokens`: only the SHA-256 of the token is stored (a leaked database reveals no usable token).
 * - `sessions`: only the SHA-256 of the session id; the CSRF secret tied to the session (double-submit).
 * - `web_audit`: every read or change of an organisation's data through the web (append-only by convention).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE users (
      id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email          text NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
      role           text NOT NULL CHECK (role IN ('admin', 'analyst', 'org')),
      org_id         bigint REFERENCES organisations (id) ON DELETE RESTRICT,
      password_hash  text NOT NULL,
      disabled       boolean NOT NULL DEFAULT false,
      created_at     timestamptz NOT NULL DEFAULT now(),
      CHECK ((role = 'org') = (org_id IS NOT NULL))
    )`.execute(db);
  await sql`
    CREATE TABLE api_tokens (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      token_sha256  text NOT NULL UNIQUE,
      name          text NOT NULL,
      user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      created_at    timestamptz NOT NULL DEFAULT now(),
      last_used_at  timestamptz,
      expires_at    timestamptz,
      revoked_at    timestamptz
    )`.execute(db);
  await sql`CREATE INDEX api_tokens_user ON api_tokens (user_id)`.execute(db);
  await sql`
    CREATE TABLE sessions (
      id_sha256    text PRIMARY KEY,
      user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      csrf_secret  text NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now(),
      expires_at   timestamptz NOT NULL
    )`.execute(db);
  await sql`CREATE INDEX sessions_user ON sessions (user_id)`.execute(db);
  await sql`
    CREATE TABLE web_audit (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      at          timestamptz NOT NULL DEFAULT now(),
      user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
      email       text,
      method      text NOT NULL,
      route       text NOT NULL,
      org_scope   bigint,
      status      integer NOT NULL
    )`.execute(db);
  await sql`CREATE INDEX web_audit_at ON web_audit (at)`.execute(db);
}
