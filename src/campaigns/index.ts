/**
 * Warning campaigns (issue 9 §2): selection, grouping per organisation, recipient chains, tickets, the safe
 * template engine, message rendering, acknowledgement tokens and the outbox state machine. Pure: the stores
 * (src/platform/db/campaign-store.ts) and the SMTP adapter (src/platform/mail) are driven by
 * src/services/campaigns.ts.
 */
export * from './types.js';
export * from './selection.js';
export * from './recipients.js';
export * from './ticket.js';
export * from './template.js';
export * from './render.js';
export * from './token.js';
export * from './outbox.js';
export * from './dsn.js';
