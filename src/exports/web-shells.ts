/**
 * Web-shell paths from what an incident carries (issue 10 §6): the reporter's stage-1 indicators (free text: one
 * address, domain, hash, path or URL each) and uploaded forensics-kit output (`tocsin forensics --format jsonl`, one
 * FindingRecord per line). Only file findings of the kit's web-shell checks count, and only indicators that look
 * like a path to a server-side script; everything else is left out rather than guessed at. Pure.
 */
import type { FileIndicator } from './types.js';

/** Extensions IIS (and the usual other servers) run as code: a file with one of these under a web root is a shell. */
const SCRIPT_EXT = /\.(aspx|asp|ashx|asmx|axd|cshtml|php\d?|phtml|jsp|jspx|cfm)$/i;
/** C:\..., \\server\share\..., or /... (a URL path or a POSIX path). */
const PATH_START = /^(?:[A-Za-z]:[\\/]|\\\\|\/)/;
const SHA256 = /^[0-9a-f]{64}$/i;

/** A stage-1 indicator that is a path to a server-side script, trimmed; else null. */
export function webShellPathOf(indicator: string): string | null {
  const s = indicator.trim();
  if (s.length > 1000 || !PATH_START.test(s) || s.startsWith('//')) return null;
  return SCRIPT_EXT.test(s) ? s : null;
}

/** The part of a forensics display path inside an archive (`evidence.zip!/aspnet_client/x.aspx` -> the member). */
function memberPath(display: string): string {
  const cut = display.lastIndexOf('!/');
  return cut < 0 ? display : `/${display.slice(cut + 2)}`;
}

/**
 * Web-shell files named by forensics-kit JSONL output: records whose check is a web-shell FILE check
 * (`webshell-file-*`, `webshell-content-*`; line null). Lines that are not such records are skipped, so any upload can
 * be read safely. A SHA-256 is taken from the evidence when it names one (`sha256=...`).
 */
export function webShellsFromForensics(text: string): FileIndicator[] {
  const out: FileIndicator[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    const r = v as Record<string, unknown>;
    if (typeof r['check'] !== 'string' || typeof r['file'] !== 'string' || r['line'] !== null) continue;
    if (!/^webshell-(file|content)-/.test(r['check'])) continue;
    const sha = typeof r['sha256'] === 'string' && SHA256.test(r['sha256']) ? r['sha256'].toLowerCase() : null;
    out.push({ path: memberPath(r['file']), sha256: sha });
  }
  return out;
}
