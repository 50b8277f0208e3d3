/**
 * The no-login pages of invitation and password reset (issue 10 §2), registered next to /login in src/web/app.ts:
 * `/reset` asks for the address (POST /api/password-reset), `/reset/complete?token=` chooses the password
 * (POST /api/password-reset/complete) and then goes to /login. app.js posts the forms; the token travels in a
 * hidden field, escaped by the html tag like any other value (it comes from a URL anyone can craft).
 */
import { html } from '../html.js';
import { layout } from '../page.js';

/** The session's CSRF token when a logged-in user opens the page (app.js must send it), else null. */
export function resetPage(csrfToken: string | null): string {
  return layout({
    title: 'Reset password',
    principal: null,
    csrfToken,
    current: '/reset',
    body: html`<section class="login"><h1>Reset your password</h1>
<form data-api="/api/password-reset" data-method="POST">
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required maxlength="320">
<p><button type="submit">Send me a link</button></p>
<p class="muted" data-result role="status"></p>
</form>
<p><a href="/login">Back to log in</a></p></section>`,
  });
}

export function resetCompletePage(token: string, csrfToken: string | null): string {
  const usable = /^[A-Za-z0-9_-]{20,200}$/.test(token);
  return layout({
    title: 'Choose a password',
    principal: null,
    csrfToken,
    current: '/reset/complete',
    body: usable
      ? html`<section class="login"><h1>Choose a password</h1>
<form data-api="/api/password-reset/complete" data-method="POST" data-redirect="/login">
<input type="hidden" name="token" value="${token}">
<label for="password">New password (at least 12 characters)</label><input id="password" name="password" type="password" autocomplete="new-password" minlength="12" maxlength="1024" required>
<p><button type="submit">Set password</button></p>
</form></section>`
      : html`<section class="login"><h1>Choose a password</h1><p class="error">This link is incomplete. Open the link from the e-mail as it was sent, or <a href="/reset">ask for a new one</a>.</p></section>`,
  });
}
