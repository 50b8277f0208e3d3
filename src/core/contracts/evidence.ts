/** Evidence kept with every fact and verdict: what proved it. Hostile text: escape before display. */
/** A short, capped excerpt that proves a fact: which request, which header or body bytes. */
export interface Evidence {
  readonly detector: string;
  readonly probe: string;
  readonly url: string;
  /** "header", "body" or "status". */
  readonly where: 'header' | 'body' | 'status' | 'tls';
  /** Header name or a body locator. */
  readonly name?: string;
  /** Excerpt, at most 200 characters, control characters removed. Hostile text. For a header: the value only. */
  readonly excerpt: string;
}

export type { BuildPrecision } from './verdict.js';
