/**
 * `/`: the analyst's landing page (the national picture lives in src/web/pages/dashboard.ts once built; this
 * placeholder keeps `/` answering). Organisation users are sent to /portal by the app.
 */
import { html } from '../html.js';
import type { PageModule } from '../page.js';

export const homePages: PageModule = () => [
  {
    url: '/',
    audience: 'staff',
    render: async ({ principal }) => ({ title: 'National picture', body: html`<h1>National picture</h1><p>Logged in as ${principal.email}.</p>` }),
  },
];
