/**
 * zmap CSV output (`-O csv`, run with `-f saddr,sport,...`: `saddr` is the host, `sport` the port that
 * answered). Read by header name; where zmap's `success` or `classification` columns are present, only
 * successful SYN-ACKs count (a RST is a closed port). Rows become `port-open`.
 */
import { sanitiseText } from '../core/text.js';
import { csvRecords } from './csv-records.js';
import { readIp, readPort, readTime } from './fields.js';
import type { FeedFormat, FeedItem, InputLine, ParseContext } from './types.js';

export const zmap: FeedFormat = {
  id: 'zmap',
  description: 'zmap CSV output (-O csv -f saddr,sport,...): answering ports',
  detect(head) {
    const cols = (head.split('\n', 1)[0] ?? '').toLowerCase().split(',').map((c) => c.trim());
    return cols.includes('saddr');
  },
  async *parse(lines: AsyncIterable<InputLine>, ctx: ParseContext): AsyncGenerator<FeedItem> {
    for await (const item of csvRecords(lines, ctx.file, () => ['saddr', 'sport'])) {
      if (item.type !== 'record') {
        yield item;
        continue;
      }
      const { line, raw, get } = item;
      const success = get('success');
      const cls = get('classification');
      if ((success !== undefined && success.trim() !== '1' && success.trim().toLowerCase() !== 'true') || (cls !== undefined && cls.trim() !== '' && cls.trim().toLowerCase() !== 'synack')) {
        yield { type: 'skip', line };
        continue;
      }
      const ip = readIp(get('saddr'));
      if (ip === null) {
        yield { type: 'problem', line, raw, error: `bad IP address ${JSON.stringify(sanitiseText(get('saddr') ?? '', { max: 64 }))}` };
        continue;
      }
      const port = readPort(get('sport'));
      if (port === null) {
        yield { type: 'problem', line, raw, error: `bad port ${JSON.stringify(sanitiseText(get('sport') ?? '', { max: 32 }))}` };
        continue;
      }
      const seenAt = readTime(get('timestamp_ts') ?? get('timestamp_str'));
      yield {
        type: 'row', line, raw,
        row: {
          kind: 'port-open', ip, port, transport: 'tcp', hostname: null, reportType: 'zmap', reportDate: seenAt?.slice(0, 10) ?? null, seenAt,
          tags: [], reportedCves: [], compromised: false, product: null, build: null, buildPrecision: null, fields: {},
        },
      };
    }
  },
};
