/**
 * CSV and JSONL downloads of any list route (issue 10 §6): `?format=csv|jsonl` on a list answers with the WHOLE
 * list (every page, not one) as a streamed attachment instead of one JSON page.
 *
 * How a list route adopts it (see src/web/routes/exposures.ts):
 * 1. add `format: LIST_FORMAT` to its querystring schema properties;
 * 2. in the handler, before reading one page: `if (isDownload(q.format)) return sendList(reply, q.format, spec, records)`
 *    where `records` is an AsyncIterable read lazily from a service in the caller's scope (iterate keyset pages in
 *    the service: never load the list into memory) and `spec` names the file and the CSV columns;
 * 3. nothing else: a stream is never passed through the response serialiser, so the route keeps its JSON response
 *    schema for the paged answer (and `audit: true` still writes its row when the download starts).
 * CSV: RFC 4180 with CRLF, a header line, cells made formula-safe and stripped of hostile control characters
 * (src/exports/csv.ts via the service); lists joined by spaces, objects as compact JSON. JSONL: one record per line.
 * Headers set here: Content-Type (text/csv or application/x-ndjson), Content-Disposition attachment with an ASCII
 * file name, X-Content-Type-Options stays nosniff (app-wide).
 *
 * A failure after the first byte cannot change the status any more: the stream is cut (the client sees a truncated
 * download, never a silently complete-looking one, because the error destroys the connection).
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { csvLine, jsonlLine, recordCells } from '../services/exports.js';
import type { JsonSchema } from './openapi.js';

export type ListFormat = 'json' | 'csv' | 'jsonl';
export type DownloadFormat = 'csv' | 'jsonl';

/** The `format` querystring property of a list route. */
export const LIST_FORMAT: JsonSchema = { type: 'string', enum: ['json', 'csv', 'jsonl'], default: 'json', description: 'json: one page; csv or jsonl: the whole list as a download' };

export interface ListSpec<T> {
  /** File name without extension, e.g. "exposures" (ASCII letters, digits, - and _ only). */
  readonly name: string;
  /** CSV columns, in order: keys of the record unless `cells` is given. */
  readonly columns: readonly string[];
  /** The record as JSONL (default: as it is). */
  readonly json?: (r: T) => unknown;
  /** The record's CSV cells (default: `columns` read from the record). */
  readonly cells?: (r: T) => readonly (string | number | boolean | null | undefined)[];
}

export function isDownload(format: string | undefined): format is DownloadFormat {
  return format === 'csv' || format === 'jsonl';
}

async function* lines<T extends object>(format: DownloadFormat, spec: ListSpec<T>, records: AsyncIterable<T>): AsyncGenerator<string> {
  if (format === 'csv') yield csvLine(spec.columns);
  for await (const r of records) {
    if (format === 'jsonl') yield jsonlLine(spec.json === undefined ? r : spec.json(r));
    else yield csvLine(spec.cells === undefined ? recordCells(r as Readonly<Record<string, unknown>>, spec.columns) : spec.cells(r));
  }
}

/** Sends the records as a CSV or JSONL attachment, pulled one record at a time as the client reads (back-pressure). */
export function sendList<T extends object>(reply: FastifyReply, format: DownloadFormat, spec: ListSpec<T>, records: AsyncIterable<T>): FastifyReply {
  const name = spec.name.replace(/[^A-Za-z0-9_-]/g, '') || 'list';
  const ext = format === 'csv' ? 'csv' : 'jsonl';
  return reply
    .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
    .header('content-disposition', `attachment; filename="${name}.${ext}"`)
    .send(Readable.from(lines(format, spec, records), { objectMode: false }));
}

/** A JSON document as a download (MISP events, STIX bundles). `filename` must be ASCII without quotes. */
export function sendAttachment(reply: FastifyReply, filename: string, contentType: string, document: unknown): FastifyReply {
  const name = filename.replace(/[^A-Za-z0-9._-]/g, '') || 'export.json';
  return reply.type(contentType).header('content-disposition', `attachment; filename="${name}"`).send(`${JSON.stringify(document, null, 2)}\n`);
}
