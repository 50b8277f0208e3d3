/**
 * The feed-import vocabulary: a feed format is a data-first plugin (id, detection, a parser over lines),
 * registered explicitly in ./registry.ts, like products in src/products/registry.ts. Parsers are pure: they
 * read the lines they are given and yield rows or problems; reading files, archives and stdin, hashing and
 * storing are the service's (src/services/ingest.ts).
 *
 * Every input line ends up as exactly one of: a row (imported or a duplicate), a problem (quarantined with
 * its file, line, raw text and error), or skipped (a comment, a header, a blank line, a closed port). A
 * problem with the whole report (a required column missing, a DTD in XML) is thrown as TOCSIN_FEED_REJECTED
 * before or instead of any row, and the service then changes nothing.
 */

/** One line of input: 1-based number, text without its line ending (a UTF-8 BOM on line 1 is dropped). */
export interface InputLine {
  readonly no: number;
  readonly text: string;
}

/**
 * What a row is:
 * - `exchange`: a Microsoft Exchange service a feed reported (Shadowserver scan_exchange, scan6_exchange, a
 *   special report tagged exchange): assessed with the product's knowledge base like a scanned host;
 * - `port-open`: an open port from a port scanner (nmap, masscan, zmap);
 * - `generic`: any other report row, kept and listed, not assessed.
 */
export type FeedRowKind = 'exchange' | 'port-open' | 'generic';

export interface FeedRow {
  readonly kind: FeedRowKind;
  /** Canonical address text (core/ip normalizeIp). */
  readonly ip: string;
  /** Null when the report has none (some special reports). */
  readonly port: number | null;
  readonly transport: string | null;
  readonly hostname: string | null;
  /** The report type (Shadowserver's `scan_exchange`, ...; `nmap`, `masscan`, `zmap` for port scanners). */
  readonly reportType: string;
  /** YYYY-MM-DD: the report's date (file name) or else the row's own date. */
  readonly reportDate: string | null;
  /** ISO time the feed says it saw the service. */
  readonly seenAt: string | null;
  readonly tags: readonly string[];
  /** CVE ids the feed claims (upper case), e.g. from Shadowserver's `cve-2021-26855` tag. */
  readonly reportedCves: readonly string[];
  /** The feed says the host is compromised (Shadowserver's `webshell` tag). */
  readonly compromised: boolean;
  /** For `exchange` rows: the product id and the build the feed read, at the precision it has. */
  readonly product: string | null;
  readonly build: string | null;
  readonly buildPrecision: 'exact' | 'cu' | null;
  /** Everything else the row said, by field name (hostile text: sanitise before display). */
  readonly fields: Readonly<Record<string, string>>;
}

export type FeedItem =
  | { readonly type: 'row'; readonly line: number; readonly raw: string; readonly row: FeedRow }
  | { readonly type: 'problem'; readonly line: number; readonly raw: string; readonly error: string }
  | { readonly type: 'skip'; readonly line: number };

export interface ParseContext {
  /** The file's display name (path, `archive.zip:member`, `-`), for messages. */
  readonly file: string;
  /** Base name of the file (what report types and dates are read from). */
  readonly baseName: string;
  /** --report-type: overrides the file name. */
  readonly reportType: string | null;
}

export interface FeedFormat {
  readonly id: FeedFormatId;
  readonly description: string;
  /** True when the first bytes (decoded as UTF-8, at most a few KiB) and the file name look like this format. */
  detect(head: string, baseName: string): boolean;
  /** The rows of one file. Throws TocsinError TOCSIN_FEED_REJECTED on a report-level problem. */
  parse(lines: AsyncIterable<InputLine>, ctx: ParseContext): AsyncGenerator<FeedItem>;
}

export type FeedFormatId = 'shadowserver' | 'nmap-xml' | 'masscan' | 'zmap';
