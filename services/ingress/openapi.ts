/**
 * The ingress's HTTP API as an OpenAPI 3.1 document, built from the zod schemas that validate the
 * requests (openapi-schemas.ts) with zod's own JSON Schema converter, so a field added to a schema
 * is in the document at the next `npm run gen:openapi` (docs/openapi.json, checked for drift by
 * test/ingress/openapi.test.ts) and at once in `GET /openapi.json`.
 *
 * What the document leaves out, as JSON Schema cannot say it, is the ingress's alone (docs/API.md
 * lists it): limits in bytes, the content's size and nesting, most rules between fields (refinements
 * are dropped; media's "link or id" is carried as metadata in media.ts), a template's text parameter
 * lengths, http(s)-only links, the single emoji (its pattern needs the `v` flag), `sendAt`'s horizon.
 */
import { z } from 'zod';
import { componentSchemas } from './openapi-schemas.js';
import { WEBHOOK_PATH } from './webhook-routes.js';

export const OPENAPI_PATH = '/openapi.json';

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ content: { 'application/json': { schema } } });
const answer = (description: string, schema?: Json, headers?: Json) => ({
  description,
  ...(headers ? { headers } : {}),
  ...(schema ? json(schema) : {}),
});
const problem = (name: string) => ({ $ref: `#/components/responses/${name}` });

/** The error answers, each with the `{error, message, field?}` body. */
const RESPONSES = {
  BadRequest: answer('Invalid request: `field` names the part at fault (`messages.3.text.body`, `(body)`, `X-Correlation-Id`).', ref('Error')),
  Unauthorized: answer('Missing or wrong credentials.', ref('Error'), { 'WWW-Authenticate': { schema: { type: 'string' } } }),
  Forbidden: answer('A signature or verify token that does not match.', ref('Error')),
  NotFound: answer('No such route or record.', ref('Error')),
  PayloadTooLarge: answer('A body over 1 MB.', ref('Error')),
  UnsupportedMediaType: answer('The body is not declared `Content-Type: application/json` (UTF-8).', ref('Error')),
  Unavailable: answer(
    'Not accepted now: retry after `Retry-After` seconds. With `"outcome": "unknown"` the publish may have been stored: retry with the same idempotencyKey.',
    ref('Error'),
    { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } },
  ),
};

const correlationHeader = {
  name: 'X-Correlation-Id',
  in: 'header',
  required: false,
  description: "An id for logs and tracing, carried as the AMQP correlation-id; the body's correlationId wins. Printable ASCII, at most 200 bytes.",
  schema: { type: 'string', maxLength: 200, pattern: '^[\\x20-\\x7e]*$' },
};

/** A JSON send route: bearer auth, a JSON body, its answers. */
function sendRoute(summary: string, body: string, ok: Json): Json {
  return {
    summary,
    security: [{ bearer: [] }],
    parameters: [correlationHeader],
    requestBody: { required: true, ...json(ref(body)) },
    responses: {
      ...ok,
      400: problem('BadRequest'),
      401: problem('Unauthorized'),
      413: problem('PayloadTooLarge'),
      415: problem('UnsupportedMediaType'),
      503: problem('Unavailable'),
    },
  };
}

function paths(): Json {
  const retryAfter = { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };
  const query = (name: string, description: string) => ({ name, in: 'query', required: true, description, schema: { type: 'string' } });
  return {
    '/v1/messages': {
      post: sendRoute('Send one message', 'SendRequest', {
        200: answer('A repeat of an idempotency key.', ref('Duplicate')),
        202: answer('Accepted (confirmed by the broker) or scheduled (stored in Redis).', { oneOf: [ref('Accepted'), ref('Scheduled')] }),
      }),
    },
    '/v1/messages/batch': {
      post: sendRoute('Send up to 500 messages', 'BatchRequest', {
        202: answer('Every item accepted, scheduled or a duplicate.', ref('BatchResult')),
        207: answer('Some items rejected (400) or not accepted (503); the items tell which.', ref('BatchResult'), retryAfter),
      }),
    },
    '/v1/messages/{id}': {
      get: {
        summary: 'Where a message is: its status record',
        security: [{ bearer: [] }],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          200: answer('The status record.', ref('StatusRecord')),
          401: problem('Unauthorized'),
          404: problem('NotFound'),
          503: problem('Unavailable'),
        },
      },
    },
    [WEBHOOK_PATH]: {
      get: {
        summary: "Meta's subscription check",
        parameters: [
          query('hub.mode', 'Must be `subscribe`.'),
          query('hub.verify_token', 'Must match WHATSAPP_VERIFY_TOKEN.'),
          query('hub.challenge', 'Echoed back; 1 to 256 characters.'),
        ],
        responses: {
          200: { description: 'The challenge.', content: { 'text/plain': { schema: { type: 'string' } } } },
          400: problem('BadRequest'),
          403: problem('Forbidden'),
        },
      },
      post: {
        summary: "Meta's notifications: inbound messages and statuses",
        parameters: [
          {
            name: 'X-Hub-Signature-256',
            in: 'header',
            required: true,
            description: '`sha256=` and the hex HMAC-SHA256 of the raw body, keyed with WHATSAPP_APP_SECRET.',
            schema: { type: 'string', pattern: '^sha256=[0-9a-fA-F]{64}$' },
          },
        ],
        requestBody: { required: true, ...json(ref('WebhookNotification')) },
        responses: {
          200: answer('Every event confirmed by the broker (or skipped, or a repeat).', ref('WebhookAck')),
          400: problem('BadRequest'),
          401: problem('Unauthorized'),
          403: problem('Forbidden'),
          413: problem('PayloadTooLarge'),
          503: problem('Unavailable'),
        },
      },
    },
    '/healthz': {
      get: { summary: 'Liveness', responses: { 200: answer('Alive.', ref('Liveness')), 503: answer('Stuck.', ref('Liveness')) } },
    },
    '/readyz': {
      get: { summary: 'Readiness', responses: { 200: answer('Ready.', ref('Readiness')), 503: answer('Not ready.', ref('Readiness')) } },
    },
    [OPENAPI_PATH]: {
      get: { summary: 'This document', responses: { 200: answer('The OpenAPI document.', { type: 'object' }) } },
    },
    '/metrics': {
      servers: [
        {
          url: 'http://{host}:{port}',
          description: 'METRICS_PORT: never exposed publicly',
          variables: { host: { default: '127.0.0.1' }, port: { default: '9464' } },
        },
      ],
      get: {
        summary: 'Prometheus metrics (on METRICS_PORT, beside the detailed /healthz and /readyz)',
        responses: { 200: { description: 'The metrics, in Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
  };
}

/**
 * JSON Schemas of `components.schemas`. Patterns are kept only where they compile as ECMA-262 with
 * the `u` flag, which JSON Schema validators use (the emoji check needs the newer `v` flag).
 */
function schemas(): Json {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(componentSchemas())) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io: 'input',
    uri: (id) => `#/components/schemas/${id}`,
    override: ({ jsonSchema }) => {
      if (typeof jsonSchema.pattern === 'string' && !compilesAsUnicode(jsonSchema.pattern)) delete jsonSchema.pattern;
    },
  });
  return Object.fromEntries(Object.entries(out.schemas).map(([id, { $schema: _s, $id: _id, ...s }]) => [id, s]));
}

function compilesAsUnicode(pattern: string): boolean {
  try {
    new RegExp(pattern, 'u');
    return true;
  } catch {
    return false;
  }
}

/** The whole document: the same object for the same schemas. */
export function openApiDocument(): Json {
  return {
    openapi: '3.1.1',
    info: {
      title: 'Postmaster ingress',
      version: '1.0.0',
      description: "The send API, Meta's webhook and the health answers of the Postmaster ingress (docs/API.md).",
    },
    paths: paths(),
    components: {
      schemas: schemas(),
      responses: RESPONSES,
      headers: { RetryAfter: { description: 'Seconds to wait before retrying (INGRESS_RETRY_AFTER_S).', schema: { type: 'integer', minimum: 0 } } },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'INGRESS_API_TOKEN (or INGRESS_API_TOKEN_PREVIOUS during a rotation).' } },
    },
  };
}

/** docs/openapi.json's text. */
export function renderOpenApi(): string {
  return JSON.stringify(openApiDocument(), null, 2) + '\n';
}
