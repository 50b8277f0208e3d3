/**
 * Shadowserver reports (CSV), any report type, read by header name: the column order is not fixed and new
 * columns appear over the years (scan_exchange gained severity, protocol and hostname_source after 2021).
 * The report type and date come from the file name (`YYYY-MM-DD-TYPE-....csv`, Shadowserver's documented
 * naming) or --report-type.
 *
 * Exchange reports (scan_exchange, scan6_exchange, and special reports whose row is tagged `exchange`) become
 * `exchange` rows: product ms-exchange, the `version` field as a build at CU precision (Shadowserver reads it
 * from the OWA asset path: major.minor.build, no security-update revision), the `cve-YYYY-NNNN` tags as the
 * feed's reported CVEs, and a `webshell` tag as compromised. Every other row is kept as a `generic` row.
 */
import { normaliseBuild } from '../core/build-number.js';
import { TocsinError } from '../core/errors.js';
import { sanitiseText } from '../core/text.js';
import { EXCHANGE_ID } from '../products/exchange/index.js';
import { csvRecords } from './csv-records.js';
import { readDate, readHostname, readIp, readPort, readTime } from './fields.js';
import type { FeedFormat, FeedItem, FeedRow, InputLine, ParseContext } from './types.js';

/** Report types whose every row is an Exchange service. */
export const EXCHANGE_REPORT_TYPES: ReadonlySet<string> = new Set(['scan_exchange', 'scan6_exchange']);

const FILE_NAME = /^(\d{4}-\d{2}-\d{2})-([^-]+)-.+\.csv$/i;
const REPORT_TYPE = /^[a-z0-9_]{1,64}$/;
const CVE_TAG = /^cve-(\d{4})-(\d{4,7})$/;

/** Report type and date from a Shadowserver file name, or nulls. */
export function reportOfFileName(baseName: string): { readonly type: string | null; readonly date: string | null } {
  const m = FILE_NAME.exec(baseName);
  if (m === null) return { type: null, date: null };
  return { type: (m[2] ?? '').toLowerCase(), date: readDate(m[1] ?? '') };
}

function problem(line: number, raw: string, error: string): FeedItem {
  return { type: 'problem', line, raw, error };
}

export const shadowserver: FeedFormat = {
  id: 'shadowserver',
  description: 'Shadowserver report CSV (any report type, columns by header name; type and date from YYYY-MM-DD-TYPE-....csv or --report-type)',
  detect(head, baseName) {
    if (FILE_NAME.test(baseName)) return true;
    const first = (head.split('\n', 1)[0] ?? '').toLowerCase().replace(/"/g, '');
    const cols = first.split(',').map((c) => c.trim());
    return cols.includes('timestamp') && cols.includes('ip');
  },
  async *parse(lines: AsyncIterable<InputLine>, ctx: ParseContext): AsyncGenerator<FeedItem> {
    const named = reportOfFileName(ctx.baseName);
    const reportType = (ctx.reportType ?? named.type)?.toLowerCase() ?? null;
    if (reportType === null) {
      throw new TocsinError('TOCSIN_FEED_FORMAT_UNKNOWN', `${ctx.file}: the Shadowserver report type is not in the file name (YYYY-MM-DD-TYPE-....csv); give --report-type`);
    }
    if (!REPORT_TYPE.test(reportType)) {
      throw new TocsinError('TOCSIN_FEED_FORMAT_UNKNOWN', `${ctx.file}: not a report type: ${JSON.stringify(sanitiseText(reportType, { max: 70 }))}`);
    }
    const exchangeReport = EXCHANGE_REPORT_TYPES.has(reportType);
    const required = (): string[] => (exchangeReport ? ['timestamp', 'ip', 'port', 'tag'] : ['timestamp', 'ip']);
    for await (const item of csvRecords(lines, ctx.file, required)) {
      if (item.type !== 'record') {
        yield item;
        continue;
      }
      const { line, raw, get, record } = item;
      const ip = readIp(get('ip'));
      if (ip === null) {
        yield problem(line, raw, `bad IP address ${JSON.stringify(sanitiseText(get('ip') ?? '', { max: 64 }))}`);
        continue;
      }
      const portText = (get('port') ?? '').trim();
      const port = portText === '' ? null : readPort(portText);
      if (portText !== '' && port === null) {
        yield problem(line, raw, `bad port ${JSON.stringify(sanitiseText(portText, { max: 32 }))}`);
        continue;
      }
      const seenAt = readTime(get('timestamp'));
      if (seenAt === null) {
        yield problem(line, raw, `bad timestamp ${JSON.stringify(sanitiseText(get('timestamp') ?? '', { max: 40 }))}`);
        continue;
      }
      const tags = (get('tag') ?? '').split(/[;,]/).map((t) => t.trim().toLowerCase()).filter((t) => t !== '');
      const isExchange = exchangeReport || tags.includes('exchange');
      if (isExchange && port === null) {
        yield problem(line, raw, 'port missing (an Exchange report row needs one)');
        continue;
      }
      const reportedCves: string[] = [];
      for (const t of tags) {
        const m = CVE_TAG.exec(t);
        if (m !== null) reportedCves.push(`CVE-${m[1] ?? ''}-${m[2] ?? ''}`);
      }
      const versionText = (get('version') ?? '').trim();
      const build = isExchange && versionText !== '' ? normaliseBuild(versionText) : null;
      const row: FeedRow = {
        kind: isExchange ? 'exchange' : 'generic',
        ip,
        port,
        transport: (get('protocol') ?? '').trim().toLowerCase() || null,
        hostname: readHostname(get('hostname')),
        reportType,
        reportDate: named.date ?? seenAt.slice(0, 10),
        seenAt,
        tags,
        reportedCves: [...new Set(reportedCves)].sort(),
        compromised: tags.includes('webshell'),
        product: isExchange ? EXCHANGE_ID : null,
        build,
        buildPrecision: build === null ? null : 'cu',
        fields: record,
      };
      yield { type: 'row', line, raw, row };
    }
  },
};
