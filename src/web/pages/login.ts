/** The login page (no session needed); app.js posts the form to POST /api/session and follows ?next=. */
import { html } from '../html.js';
import { layout } from '../page.js';

export function loginPage(): string {
  return layout({
    title: 'Log in',
    principal: null,
    csrfToken: null,
    current: '/login',
    body: html`<section class="login"><h1>Tocsin</h1>
<form data-api="/api/session" data-method="POST" data-redirect="@next">
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit">Log in</button></p>
</form>
<p class="muted">Accounts are made with <code>tocsin user add EMAIL --role admin|analyst|org</code>.</p></section>`,
  });
}
