/**
 * The real ScanKit: the probe client, the Exchange probe plan, the registered detectors, the Exchange
 * fingerprint and the knowledge base. The only place the engine is wired to those modules.
 */
import { openHostSession } from '../platform/net/http-probe.js';
import { productRuntimes } from '../products/registry.js';
import type { ScanKit } from '../scan/kit.js';

let cached: ScanKit | undefined;

/** Loads the knowledge base once per thread (it validates ~1,500 rows). */
export function defaultKit(): ScanKit {
  cached ??= {
    openSession: openHostSession,
    // Every registered product (probe plan, detectors, fingerprint, loaded knowledge base).
    products: productRuntimes(),
  };
  return cached;
}
