/**
 * masscan output: the list format (`-oL`: `open tcp 443 192.0.2.1 1614000000`, `#` comments) and the JSON
 * formats (`-oJ`: an array with one host object per line, `{ "ip": ..., "timestamp": ..., "ports": [{ "port":
 * 443, "proto": "tcp", "status": "open" }] },`; `-oD`: the same objects one per line). Open ports become
 * `port-open` rows; `banner` lines and closed ports are skipped.
 */
import { sanitiseText } from '../core/text.js';
import { readIp, readPort, readTime } from './fields.js';
import type { Line } from './lines.js';
import type { FeedFormat, FeedItem, FeedRow, InputLine } from './types.js';

const LIST_LINE = /^(open|closed|banner)\s+(tcp|udp|sctp)\s+(\S+)\s+(\S+)\s+(\S+)/;

function portOpen(ip: string, port: number, transport: string, seenAt: string | null, fields: Record<string, string>): FeedRow {
  return {
    kind: 'port-open', ip, port, transport, hostname: null, reportType: 'masscan', reportDate: seenAt?.slice(0, 10) ?? null, seenAt,
    tags: [], reportedCves: [], compromised: false, product: null, build: null, buildPrecision: null, fields,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonLine(no: number, text: string): FeedItem[] {
  const body = text.trim().replace(/,$/, '');
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return [{ type: 'problem', line: no, raw: text, error: 'not a JSON object' }];
  }
  if (!isRecord(v)) return [{ type: 'problem', line: no, raw: text, error: 'not a JSON object' }];
  const ip = readIp(typeof v.ip === 'string' ? v.ip : undefined);
  if (ip === null) return [{ type: 'problem', line: no, raw: text, error: `bad IP address ${JSON.stringify(sanitiseText(String(v.ip), { max: 64 }))}` }];
  const seenAt = readTime(typeof v.timestamp === 'string' || typeof v.timestamp === 'number' ? String(v.timestamp) : undefined);
  const ports = Array.isArray(v.ports) ? v.ports : [];
  if (ports.length === 0) return [{ type: 'problem', line: no, raw: text, error: 'no "ports" list' }];
  const out: FeedItem[] = [];
  for (const p of ports) {
    if (!isRecord(p)) {
      out.push({ type: 'problem', line: no, raw: text, error: 'a "ports" entry is not an object' });
      continue;
    }
    const port = readPort(typeof p.port === 'number' || typeof p.port === 'string' ? String(p.port) : undefined);
    if (port === null) {
      out.push({ type: 'problem', line: no, raw: text, error: `bad port ${JSON.stringify(sanitiseText(String(p.port), { max: 32 }))}` });
      continue;
    }
    // Banner records (-oJ with --banners) carry "service" and no status: not a port state.
    if (p.status !== 'open') {
      out.push({ type: 'skip', line: no });
      continue;
    }
    const fields: Record<string, string> = {};
    if (typeof p.reason === 'string') fields.reason = p.reason.slice(0, 64);
    if (typeof p.ttl === 'number') fields.ttl = String(p.ttl);
    out.push({ type: 'row', line: no, raw: text, row: portOpen(ip, port, typeof p.proto === 'string' ? p.proto.toLowerCase().slice(0, 8) : 'tcp', seenAt, fields) });
  }
  return out;
}

function listLine(no: number, text: string): FeedItem {
  const m = LIST_LINE.exec(text.trim());
  if (m === null) return { type: 'problem', line: no, raw: text, error: 'not a masscan list line (open|closed|banner PROTO PORT IP TIME)' };
  if (m[1] !== 'open') return { type: 'skip', line: no };
  const port = readPort(m[3]);
  if (port === null) return { type: 'problem', line: no, raw: text, error: `bad port ${JSON.stringify(sanitiseText(m[3] ?? '', { max: 32 }))}` };
  const ip = readIp(m[4]);
  if (ip === null) return { type: 'problem', line: no, raw: text, error: `bad IP address ${JSON.stringify(sanitiseText(m[4] ?? '', { max: 64 }))}` };
  return { type: 'row', line: no, raw: text, row: portOpen(ip, port, m[2] ?? 'tcp', readTime(m[5]), {}) };
}

export const masscan: FeedFormat = {
  id: 'masscan',
  description: 'masscan list (-oL) or JSON (-oJ, -oD) output: open ports',
  detect(head) {
    const first = head.split('\n').map((l) => l.trim()).find((l) => l !== '' && l !== '[') ?? '';
    return first.startsWith('#masscan') || LIST_LINE.test(first) || (first.startsWith('{') && first.includes('"ports"'));
  },
  async *parse(lines: AsyncIterable<InputLine>): AsyncGenerator<FeedItem> {
    for await (const l of lines as AsyncIterable<Line>) {
      const t = l.text.trim();
      if (l.cut === true) yield { type: 'problem', line: l.no, raw: l.text, error: 'line too long' };
      else if (t === '' || t.startsWith('#') || t === '[' || t === ']' || t === '],' || t === ',') yield { type: 'skip', line: l.no };
      else if (t.startsWith('{')) yield* jsonLine(l.no, l.text);
      else yield listLine(l.no, l.text);
    }
  },
};
