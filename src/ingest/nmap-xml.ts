/**
 * nmap XML (`-oX`): each open port of each host becomes a `port-open` row, with what nmap said about the
 * service (name, product, version) and, where present, the `http-headers` and `ssl-cert` script output
 * (subject CN and SANs parsed from the certificate output: the attribution stage reads host names from them).
 * Closed and filtered ports are skipped. A port whose number or host address is unreadable is a problem.
 */
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { readHostname, readIp, readPort, readTime } from './fields.js';
import { xmlEvents } from './xml.js';
import type { FeedFormat, FeedItem, InputLine, ParseContext } from './types.js';

/** Script output kept per port (characters): headers and a certificate summary, not whole pages. */
const SCRIPT_CAP = 4096;

interface PortDraft {
  readonly line: number;
  readonly raw: string;
  readonly protocol: string;
  readonly portid: string;
  state: string;
  readonly fields: Record<string, string>;
}

/** Subject CN and SANs from nmap's ssl-cert output ("Subject: commonName=...", "Subject Alternative Name: DNS:a, DNS:b"). */
export function certNames(output: string): { readonly cn: string | null; readonly sans: string[] } {
  const cn = /Subject:[^\n]*?commonName=([^/\n,]+)/.exec(output)?.[1]?.trim() ?? null;
  const sanLine = /Subject Alternative Name:([^\n]*)/.exec(output)?.[1] ?? '';
  const sans = sanLine.split(',').map((s) => s.trim()).filter((s) => /^DNS:/i.test(s)).map((s) => s.slice(4).trim()).filter((s) => s !== '');
  return { cn, sans };
}

export const nmapXml: FeedFormat = {
  id: 'nmap-xml',
  description: 'nmap XML output (-oX): open ports, service names, http-headers and ssl-cert script output',
  detect(head) {
    return head.includes('<nmaprun');
  },
  async *parse(lines: AsyncIterable<InputLine>, ctx: ParseContext): AsyncGenerator<FeedItem> {
    let root = false;
    let runStart: string | null = null;
    let host: { ip: string | null; addrText: string; hostnames: string[]; seenAt: string | null; ports: PortDraft[] } | null = null;
    let port: PortDraft | null = null;
    let script: { id: string; output: string } | null = null;
    for await (const ev of xmlEvents(lines, ctx.file)) {
      if (!root) {
        if (ev.type !== 'open') continue;
        if (ev.name !== 'nmaprun') throw new TocsinError('TOCSIN_FEED_REJECTED', `${ctx.file}: not an nmap XML report (root element <${sanitiseText(ev.name, { max: 40 })}>)`);
        root = true;
        runStart = readTime(ev.attrs.get('start'));
        continue;
      }
      if (ev.type === 'open') {
        switch (ev.name) {
          case 'host':
            host = { ip: null, addrText: '', hostnames: [], seenAt: readTime(ev.attrs.get('starttime')) ?? runStart, ports: [] };
            break;
          case 'address': {
            const type = ev.attrs.get('addrtype');
            if (host !== null && (type === 'ipv4' || type === 'ipv6') && host.ip === null) {
              host.addrText = ev.attrs.get('addr') ?? '';
              host.ip = readIp(host.addrText);
            }
            break;
          }
          case 'hostname': {
            const name = readHostname(ev.attrs.get('name'));
            if (host !== null && name !== null) host.hostnames.push(name);
            break;
          }
          case 'port':
            port = { line: ev.line, raw: ev.raw, protocol: ev.attrs.get('protocol') ?? 'tcp', portid: ev.attrs.get('portid') ?? '', state: '', fields: {} };
            break;
          case 'state':
            if (port !== null) port.state = ev.attrs.get('state') ?? '';
            break;
          case 'service':
            if (port !== null) {
              for (const k of ['name', 'product', 'version', 'extrainfo', 'tunnel']) {
                const v = ev.attrs.get(k);
                if (v !== undefined && v !== '') port.fields[k === 'name' ? 'service' : k] = v.slice(0, 256);
              }
            }
            break;
          case 'script':
            if (port !== null) script = { id: ev.attrs.get('id') ?? '', output: ev.attrs.get('output') ?? '' };
            break;
          default:
        }
        continue;
      }
      if (ev.type !== 'close') continue;
      if (ev.name === 'script' && script !== null && port !== null) {
        if (script.id === 'http-headers' || script.id === 'ssl-cert') {
          port.fields[script.id] = script.output.slice(0, SCRIPT_CAP);
          if (script.id === 'ssl-cert') {
            const { cn, sans } = certNames(script.output);
            if (cn !== null) port.fields.cert_cn = cn.slice(0, 253);
            if (sans.length > 0) port.fields.cert_sans = sans.slice(0, 100).join(' ');
          }
        }
        script = null;
      } else if (ev.name === 'port' && port !== null) {
        host?.ports.push(port);
        port = null;
      } else if (ev.name === 'host' && host !== null) {
        const h = host;
        host = null;
        for (const p of h.ports) {
          const n = readPort(p.portid);
          if (h.ip === null) {
            yield { type: 'problem', line: p.line, raw: p.raw, error: `bad or missing host address ${JSON.stringify(sanitiseText(h.addrText, { max: 64 }))}` };
          } else if (n === null) {
            yield { type: 'problem', line: p.line, raw: p.raw, error: `bad port ${JSON.stringify(sanitiseText(p.portid, { max: 32 }))}` };
          } else if (p.state !== 'open') {
            yield { type: 'skip', line: p.line };
          } else {
            yield {
              type: 'row', line: p.line, raw: p.raw,
              row: {
                kind: 'port-open', ip: h.ip, port: n, transport: p.protocol.toLowerCase(), hostname: h.hostnames[0] ?? null,
                reportType: 'nmap', reportDate: (h.seenAt ?? runStart)?.slice(0, 10) ?? null, seenAt: h.seenAt ?? runStart,
                tags: [], reportedCves: [], compromised: false, product: null, build: null, buildPrecision: null,
                fields: { ...p.fields, ...(h.hostnames.length > 1 ? { hostnames: h.hostnames.slice(0, 20).join(' ') } : {}) },
              },
            };
          }
        }
      }
    }
    if (!root) throw new TocsinError('TOCSIN_FEED_REJECTED', `${ctx.file}: not an nmap XML report (no <nmaprun> element)`);
  },
};
