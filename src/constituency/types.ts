/**
 * The constituency registry's vocabulary: what an import file says about an organisation (pure data, no ids),
 * and what a parser sets aside. Parsers produce these; the service plans the change against the store.
 */

/** Where an entry came from: imported by a named source (replaced by that source's next import) or manual. */
export type Layer = 'imported' | 'manual';

export const CONTACT_ROLES = ['security', 'abuse', 'technical'] as const;
export type ContactRole = (typeof CONTACT_ROLES)[number];

/** The place in an input a value came from: file name and 1-based line (of a row, or an object's first line). */
export interface RowRef {
  readonly file: string;
  readonly line: number;
}

/**
 * One network as given: `text` is what the input said (a CIDR, a bare address, or a range "a - b"), `cidrs`
 * the minimal CIDR list it stands for (canonical text; more than one only for a range not aligned to one prefix).
 */
export interface NetworkSpec {
  readonly text: string;
  readonly cidrs: readonly string[];
}

export interface ContactSpec {
  readonly role: ContactRole;
  /** Domain part lower-case and in punycode; the local part as given. */
  readonly email: string;
  /** BCP 47 tag, lower-case primary subtag (e.g. "de", "en-gb"); null when not given. */
  readonly language: string | null;
  /** OpenPGP fingerprint, upper-case hex without spaces (40 or 64 digits); null when not given. */
  readonly pgp: string | null;
}

/** A network entry of an import, with RPSL's abuse-mailbox when the network object named one. */
export interface NetworkEntry extends NetworkSpec {
  readonly abuseMailbox: string | null;
}

/** Everything one input says about one organisation (rows of the same name, case-insensitively, are merged). */
export interface OrgRecord {
  readonly name: string;
  readonly sector: string | null;
  readonly country: string | null;
  readonly size: string | null;
  /** Name of the parent organisation, or null. */
  readonly parent: string | null;
  readonly networks: readonly (NetworkEntry & { readonly from: RowRef })[];
  readonly asns: readonly { readonly asn: number; readonly from: RowRef }[];
  readonly domains: readonly { readonly domain: string; readonly from: RowRef }[];
  readonly contacts: readonly (ContactSpec & { readonly from: RowRef })[];
  /** The rows (or objects) that contributed to this record. */
  readonly rows: readonly RowRef[];
}

/** A row, object or value set aside, with where it was and its raw text (hostile: sanitise before display). */
export interface ImportProblem {
  readonly file: string;
  /** 1-based; 0 for a problem of the whole file. */
  readonly line: number;
  readonly raw: string;
  readonly error: string;
}

/** What a parser made of one input (or of a set of RPSL split files, which refer to each other). */
export interface ParseResult {
  readonly records: readonly OrgRecord[];
  /** Bad rows and bad values: the row's other values still go in, a row without an organisation does not. */
  readonly problems: readonly ImportProblem[];
  /** Data rows (CSV), array elements (JSON) or objects (RPSL) read, per file. */
  readonly rowsRead: ReadonlyMap<string, number>;
  /** Rows read but deliberately not imported (RPSL: other countries, resources without an organisation), per file. */
  readonly skipped: ReadonlyMap<string, number>;
  /** Files refused as a whole (not the format, a required column missing): nothing of them may be applied. */
  readonly rejected: readonly ImportProblem[];
}

export type ImportFormat = 'csv' | 'json' | 'rpsl';
