/**
 * Web pages (issue 10 §3-4): server-rendered HTML on the same process and database as the API. A page module gives
 * a list of pages; the app registers each as a GET route (outside the OpenAPI document: the API is the contract,
 * pages are its presentation). Pages read through the services with the caller's scope exactly as the API does.
 *
 * The browser part is one static script (/assets/app.js) and one stylesheet (/assets/app.css); the Content Security
 * Policy allows no inline script or style, so a page must not contain <script>, on* attributes or style="...".
 * State changes go through the JSON API: a `<form data-api="/api/..." data-method="POST">` is submitted by app.js
 * as JSON with the X-CSRF-Token header (read from <meta name="csrf-token">). Plain GET forms (filters) need no script.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../services/accounts.js';
import { html, type SafeHtml } from './html.js';
import type { RouteContext } from './route.js';

/** Who may open a page: staff (admin, analyst), organisation users, or anyone logged in. */
export type PageAudience = 'staff' | 'org' | 'any';

export interface PageRequest {
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
  readonly principal: Principal;
  readonly csrfToken: string;
}

export interface Page {
  /** A Fastify route path (parameters as `:name`). */
  readonly url: string;
  readonly audience: PageAudience;
  /** Append a web_audit row (pages that show one organisation's data). */
  readonly audit?: boolean;
  /** Returns the page's <main> content and its title; the layout adds navigation and assets. */
  readonly render: (p: PageRequest) => Promise<{ title: string; body: SafeHtml }>;
}

export type PageModule = (ctx: RouteContext) => Page[];

interface NavItem {
  readonly href: string;
  readonly label: string;
}

const STAFF_NAV: readonly NavItem[] = [
  { href: '/', label: 'National picture' },
  { href: '/hosts', label: 'Hosts' },
  { href: '/campaigns', label: 'Campaigns' },
  { href: '/registry', label: 'Registry' },
  { href: '/review', label: 'Attribution review' },
  { href: '/incidents', label: 'Incidents' },
];

const ORG_NAV: readonly NavItem[] = [
  { href: '/portal', label: 'Our exposures' },
  { href: '/portal/warnings', label: 'Warnings' },
  { href: '/portal/incidents', label: 'Incidents' },
  { href: '/portal/incidents/new', label: 'Report an incident' },
];

export function navFor(p: Principal): readonly NavItem[] {
  return p.role === 'org' ? ORG_NAV : STAFF_NAV;
}

/** The full document around a page's content. */
export function layout(o: { title: string; body: SafeHtml; principal: Principal | null; csrfToken: string | null; current: string }): string {
  const nav = o.principal === null ? [] : navFor(o.principal);
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · Tocsin</title>
${o.csrfToken === null ? '' : html`<meta name="csrf-token" content="${o.csrfToken}">`}
<link rel="stylesheet" href="/assets/app.css"><script type="module" src="/assets/app.js"></script></head>
<body><header class="top"><a class="brand" href="${o.principal?.role === 'org' ? '/portal' : '/'}">Tocsin</a>
<nav>${nav.map((n) => html`<a href="${n.href}"${n.href === o.current ? html` aria-current="page"` : ''}>${n.label}</a>`)}</nav>
${o.principal === null ? '' : html`<span class="who">${o.principal.email}${o.principal.org === null ? '' : html` · ${o.principal.org}`}</span>
<form data-api="/api/session" data-method="DELETE" data-redirect="/login" class="logout"><button type="submit">Log out</button></form>`}
</header>
<main id="main">${o.body}</main></body></html>
`.value;
}
