/**
 * Invitation and password reset by e-mail (issue 10 §2). The invitation is an administrator's; the reset and its
 * completion need no login (they are how one gets a password back). The mail settings (TOCSIN_SMTP_URL,
 * TOCSIN_MAIL_FROM, TOCSIN_WEB_URL) are read per request by src/services/account-mail.ts, never from the Host
 * header (a reset link pointing at an attacker's host would hand them the token).
 *
 * POST /api/password-reset answers the same for every address (throttled per address and per client before
 * anything is read); the mail goes out after the answer, so the answer time does not tell either.
 */
import { LoginThrottle } from '../../services/accounts.js';
import { accountMailFromEnv, completeToken, inviteUser, requestPasswordReset } from '../../services/account-mail.js';
import { needAdmin, type RouteModule } from '../route.js';

export const RESET_ANSWER = 'If an account has this address, a link to choose a new password is on its way (valid for an hour).';

export const accountMailRoutes: RouteModule = ({ db }) => {
  // Reset requests: 5 per address and 50 per client in 15 minutes (every request counts, not only failures).
  // Completions: failed tokens per client (each attempt costs an argon2 hash).
  const requests = new LoginThrottle();
  const completions = new LoginThrottle({ ipLimit: 20 });
  return [
    {
      method: 'POST', url: '/api/users/invite', summary: 'Create an account and e-mail it a one-time link to choose its password (administrators)', auth: true, audit: true,
      body: {
        type: 'object', required: ['email', 'role'], additionalProperties: false,
        properties: { email: { type: 'string', maxLength: 320 }, role: { type: 'string', enum: ['admin', 'analyst', 'org'] }, org: { type: 'string', minLength: 1, maxLength: 200 } },
      },
      response: {
        200: {
          type: 'object', required: ['email', 'role', 'org', 'expiresAt', 'mail', 'message'],
          properties: {
            email: { type: 'string' }, role: { type: 'string' }, org: { type: ['string', 'null'] }, expiresAt: { type: 'string' },
            mail: { type: 'string', enum: ['accepted', 'transient', 'permanent', 'uncertain'] }, message: { type: 'string' },
          },
        },
      },
      handler: async (req) => {
        needAdmin(req);
        const b = req.body as { email: string; role: string; org?: string };
        const mail = accountMailFromEnv();
        try {
          const r = await inviteUser(db, mail.mailer, b, mail.baseUrl, { fromAddress: mail.fromAddress });
          return {
            email: r.email, role: r.role, org: r.org, expiresAt: r.expiresAt.toISOString(), mail: r.mail.kind,
            message: r.mail.kind === 'accepted' ? `invitation sent to ${r.email}` : `the account was made but the relay did not accept the invitation (${r.mail.kind}); send a password reset to retry`,
          };
        } finally {
          await mail.close();
        }
      },
    },
    {
      method: 'POST', url: '/api/password-reset', summary: 'E-mail a one-time link to choose a new password (no login; the same answer for every address)', auth: false,
      body: { type: 'object', required: ['email'], additionalProperties: false, properties: { email: { type: 'string', maxLength: 320 } } },
      response: { 200: { type: 'object', required: ['ok', 'message'], properties: { ok: { type: 'boolean' }, message: { type: 'string' } } } },
      handler: async (req) => {
        const { email } = req.body as { email: string };
        const keys = [`account:${email.trim().toLowerCase()}`, `ip:${req.ip}`];
        requests.check(keys);
        requests.fail(keys);
        const mail = accountMailFromEnv();
        let started = false;
        try {
          const r = await requestPasswordReset(db, mail.mailer, email, mail.baseUrl, { fromAddress: mail.fromAddress });
          started = true;
          // Not awaited: the SMTP transaction's time must not tell whether the address has an account.
          void r.delivery.finally(() => mail.close());
        } finally {
          if (!started) await mail.close();
        }
        return { ok: true, message: RESET_ANSWER };
      },
    },
    {
      method: 'POST', url: '/api/password-reset/complete', summary: 'Choose a password with a one-time invitation or reset link (no login; ends every session of the account)', auth: false,
      body: {
        type: 'object', required: ['token', 'password'], additionalProperties: false,
        properties: { token: { type: 'string', maxLength: 200 }, password: { type: 'string', maxLength: 1024 } },
      },
      response: { 200: { type: 'object', required: ['ok', 'email', 'message'], properties: { ok: { type: 'boolean' }, email: { type: 'string' }, message: { type: 'string' } } } },
      handler: async (req) => {
        const { token, password } = req.body as { token: string; password: string };
        const keys = [`ip:${req.ip}`];
        completions.check(keys);
        try {
          const r = await completeToken(db, token, password);
          return { ok: true, email: r.email, message: 'Your password is set: log in with it now.' };
        } catch (e) {
          completions.fail(keys);
          throw e;
        }
      },
    },
  ];
};
