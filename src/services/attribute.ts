/**
 * Attribution use cases over the constituency registry: read the registry into the engine's snapshot shape,
 * index it once, attribute and explain (`tocsin whois`). The engine (src/attribution) is pure; this is where the
 * store is read.
 */
import {
  attribute,
  buildAttributionIndex,
  type Attribution,
  type AttributionIndex,
  type ExposureFacts,
  type RegistrySnapshot,
  type SnapshotProblem,
} from '../attribution/index.js';
import type { ConstituencyStore, OrgDetail } from '../platform/db/constituency-store.js';

/**
 * The engine's snapshot of the registry as the store exports it. Each stored network row is one CIDR (a range is
 * stored as its CIDRs). Manual attribution overrides and a prefix-to-ASN table are not stored yet: empty.
 */
export function snapshotOf(orgs: readonly OrgDetail[]): RegistrySnapshot {
  return {
    organisations: orgs.map((o) => ({
      id: o.id,
      name: o.name,
      sector: o.sector,
      contacts: o.contacts.map((c) => ({ role: c.role, email: c.email, language: c.language, openpgpFingerprint: c.pgp })),
    })),
    networks: orgs.flatMap((o) => o.networks.map((n) => ({
      id: n.id, orgId: o.id, network: n.network, layer: n.layer, abuseMailbox: n.abuseMailbox, source: n.source,
    }))),
    asns: orgs.flatMap((o) => o.asns.map((a) => ({ id: a.id, orgId: o.id, asn: a.asn, layer: a.layer, source: a.source }))),
    domains: orgs.flatMap((o) => o.domains.map((d) => ({ id: d.id, orgId: o.id, domain: d.domain, layer: d.layer, source: d.source }))),
    overrides: [],
  };
}

/** The registry, read and indexed: build once, attribute many. */
export async function loadAttributionIndex(store: Pick<ConstituencyStore, 'exportAll'>): Promise<AttributionIndex> {
  return buildAttributionIndex(snapshotOf(await store.exportAll()));
}

export interface WhoisAnswer {
  readonly attribution: Attribution;
  /** Registry entries the engine could not use (should be none: the store validates what it keeps). */
  readonly problems: readonly SnapshotProblem[];
  readonly registry: { readonly organisations: number; readonly indexMs: number };
}

/** `tocsin whois`: who an address (with what else is known about it) belongs to, and why. */
export async function whois(store: Pick<ConstituencyStore, 'exportAll'>, facts: ExposureFacts): Promise<WhoisAnswer> {
  const index = await loadAttributionIndex(store);
  return {
    attribution: attribute(index, facts),
    problems: index.problems,
    registry: { organisations: index.organisations.size, indexMs: index.stats.buildMs },
  };
}

export interface RefreshSummary {
  /** The registry revision the stored answers now carry. */
  readonly registryRev: number;
  /** Addresses looked at (new, stale by revision, or with newer facts). */
  readonly considered: number;
  readonly attributed: number;
  readonly unattributed: number;
  /** Addresses whose organisation changed (each is a row in attribution_changes). */
  readonly changed: number;
  readonly ms: number;
}

/**
 * Bring the stored attributions (table `attributions`, migration 0008) up to date: every address with an
 * observation (scan or feed, table `observations` and `feed_observations`) gets a row; rows computed at an older
 * registry revision, or before newer facts about the address, are recomputed; owner changes are appended to
 * `attribution_changes`. Idempotent: a second call with nothing changed writes nothing.
 * CONTRACT for other services (exposures, findings, campaigns): call this before reading `attributions`.
 */
export async function refreshAttributions(
  db: import('kysely').Kysely<import('../platform/db/schema.js').DbSchema>,
  opts: { readonly who?: string; readonly full?: boolean } = {},
): Promise<RefreshSummary> {
  // Placeholder until the attribution store lands (being built now): keeps the contract compiling.
  void db; void opts;
  throw new Error('refreshAttributions: not built yet');
}
