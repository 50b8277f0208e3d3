/**
 * The OpenAPI 3.1 document, generated from the same route table (and JSON schemas) the server registers, so the
 * document cannot drift from what is validated. Pure.
 */
export type JsonSchema = Readonly<Record<string, unknown>>;

export interface RouteDoc {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly summary: string;
  readonly auth: boolean;
  readonly querystring?: JsonSchema;
  readonly body?: JsonSchema;
  readonly response: Readonly<Record<number, JsonSchema>>;
}

export const ERROR_BODY: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, hint: { type: 'string' } } } },
};

export function openApiDocument(routes: readonly RouteDoc[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    // Fastify's `:name` path parameters are OpenAPI's `{name}`, each a required string parameter `in: path`.
    const pathParams = [...r.url.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const params = [...pathParams, ...Object.entries((r.querystring?.['properties'] ?? {}) as Record<string, JsonSchema>).map(([name, schema]) => ({
      name, in: 'query', required: ((r.querystring?.['required'] ?? []) as string[]).includes(name), schema,
    }))];
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(r.response)) responses[status] = { description: Number(status) < 400 ? 'ok' : 'error', content: { 'application/json': { schema } } };
    responses['default'] = { description: 'error (a stable TOCSIN_* code)', content: { 'application/json': { schema: ERROR_BODY } } };
    (paths[r.url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${r.url.replace(/[^a-z]+(.)?/gi, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      ...(params.length === 0 ? {} : { parameters: params }),
      ...(r.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } }),
      responses,
      ...(r.auth ? { security: [{ session: [] }, { bearer: [] }] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Tocsin API', version },
    paths,
    components: {
      securitySchemes: {
        session: { type: 'apiKey', in: 'cookie', name: 'tocsin_session', description: 'POST /api/session; state changes also need the X-CSRF-Token header' },
        bearer: { type: 'http', scheme: 'bearer', description: 'tocsin token create EMAIL' },
      },
    },
  };
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** A minimal browsable page (no script: the CSP allows none inline) listing every operation. */
export function docsPage(routes: readonly RouteDoc[]): string {
  const rows = routes.map((r) => `<tr><td><code>${escapeHtml(r.method)}</code></td><td><code>${escapeHtml(r.url)}</code></td><td>${escapeHtml(r.summary)}</td><td>${r.auth ? 'yes' : 'no'}</td></tr>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tocsin API</title></head>
<body><h1>Tocsin API</h1>
<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1).</p>
<table><thead><tr><th>Method</th><th>Path</th><th>What</th><th>Login</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table></body></html>
`;
}
