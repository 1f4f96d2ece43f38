/**
 * The OpenAPI document: docs/openapi.json is what the zod schemas generate now (drift), the ingress
 * serves it, its schemas compile under a strict JSON Schema 2020-12 validator, every request example
 * of docs/API.md is valid against it, bodies the ingress refuses are refused by it too, and a real
 * ingress answers as it says.
 */
import { expect } from 'chai';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { request, type Dispatcher } from 'undici';
import { openApiDocument, renderOpenApi } from '../../services/ingress/openapi.js';
import { MESSAGE_TYPES } from '../../shared/domain/content/content.js';
import { parseSendRequest, RequestError, requestFields } from '../../services/ingress/request.js';
import { startIngress, type Ingress } from '../../services/ingress/service.js';
import { read, scriptExitCode } from '../infra/repo.js';
import { requestExamples } from '../support/api-docs.js';
import { isolate, type Isolation } from '../support/isolation.js';

type Json = Record<string, any>;

const DOC_ID = 'postmaster-openapi.json';

/** The document in a strict JSON Schema 2020-12 validator, its schemas found by JSON pointer. */
function validatorOf(doc: Json): (pointer: string) => ValidateFunction {
  // OpenAPI's own objects around the schemas (paths, responses…) are not JSON Schema: they are
  // walked by pointer, and strict mode applies to each schema compiled from there.
  const ajv = new Ajv2020({ strict: true, allErrors: true, strictTypes: false, strictTuples: false, strictRequired: false });
  addFormats.default(ajv);
  ajv.addKeyword('components');
  ajv.addKeyword('paths');
  ajv.addSchema({ $id: DOC_ID, components: doc.components, paths: doc.paths });
  return (pointer) => {
    const validate = ajv.getSchema(`${DOC_ID}#${pointer}`);
    if (!validate) throw new Error(`no schema at ${pointer}`);
    return validate;
  };
}

const committed = JSON.parse(read('docs/openapi.json')) as Json;
const schemaAt = validatorOf(openApiDocument());
/** The validator of components.schemas[name]. */
const schemaOf = (name: string) => schemaAt(`/components/schemas/${name}`);

/** The validator of a route's JSON answer with that status, following a `$ref` to components.responses. */
function answerSchema(method: string, path: string, status: number): ValidateFunction {
  const escaped = path.replace(/~/g, '~0').replace(/\//g, '~1');
  let at = `/paths/${escaped}/${method.toLowerCase()}/responses/${status}`;
  const ref: string | undefined = committed.paths[path][method.toLowerCase()].responses[status]?.$ref;
  if (ref) at = ref.slice(1);
  return schemaAt(`${at}/content/application~1json/schema`);
}

/** Asserts that a real answer is what the document says for that route and status. */
async function expectDocumented(method: string, path: string, res: Dispatcher.ResponseData, status: number): Promise<Json> {
  const body = (await res.body.json()) as Json;
  expect(res.statusCode, JSON.stringify(body)).to.equal(status);
  expect(errorsOf(answerSchema(method, path, status), body), `${method} ${path} ${status}`).to.equal('');
  return body;
}

/** The components.schemas name of a route's JSON request body. */
function bodySchemaName(doc: Json, method: string, path: string): string {
  const ref: string | undefined = doc.paths[path]?.[method.toLowerCase()]?.requestBody?.content?.['application/json']?.schema?.$ref;
  if (!ref) throw new Error(`the document has no JSON request body for ${method} ${path}`);
  return ref.replace('#/components/schemas/', '');
}

function errorsOf(validate: ValidateFunction, body: unknown): string {
  return validate(body) ? '' : JSON.stringify(validate.errors?.slice(0, 3));
}

describe('OpenAPI document (docs/openapi.json)', () => {
  it('is exactly what npm run gen:openapi generates from the zod schemas now', async () => {
    expect(read('docs/openapi.json')).to.equal(renderOpenApi());
    expect(await scriptExitCode('dist/scripts/gen-openapi.js', ['--check'])).to.equal(0);
  });

  it('is OpenAPI 3.1 and covers every route of the API table of docs/API.md', () => {
    expect(committed.openapi).to.match(/^3\.1\./);
    const table = [...read('docs/API.md').matchAll(/^\| `(GET|POST) (\/[^`]+)`/gm)].map(([, m, p]) => `${m} ${p.replace(/:(\w+)/g, '{$1}')}`);
    expect(table.length).to.be.greaterThan(5);
    const documented = Object.entries(committed.paths as Json).flatMap(([p, ops]) =>
      Object.keys(ops)
        .filter((k) => k !== 'servers')
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(documented).to.include.members(table);
  });

  it("derives every send request from the schemas: each type and each of Postmaster's fields", () => {
    const send = committed.components.schemas.SendRequest.anyOf.map((r: { $ref: string }) => committed.components.schemas[r.$ref.split('/').pop()!]);
    expect(send.map((s: Json) => s.properties.type?.const ?? 'read receipt')).to.deep.equal([...MESSAGE_TYPES, 'read receipt']);
    for (const s of send) expect(Object.keys(s.properties)).to.include.members(Object.keys(requestFields.shape));
  });

  it('has schemas that compile under strict JSON Schema 2020-12', () => {
    for (const name of Object.keys(committed.components.schemas)) expect(() => schemaOf(name), name).not.to.throw();
  });

  describe('every request example of docs/API.md is valid against it', () => {
    const examples = requestExamples(read('docs/API.md'));

    it('finds the examples: every message type section, a batch and a webhook', () => {
      expect(examples.filter((e) => e.path === '/v1/messages').length).to.be.greaterThan(15);
      expect(examples.map((e) => e.path)).to.include.members(['/v1/messages/batch', '/webhooks/whatsapp']);
    });

    examples.forEach((example, n) => {
      if (example.path === '/v1/messages/batch') return;
      it(`${example.method} ${example.path} under "${example.title}" (example ${n + 1})`, () => {
        const validate = schemaOf(bodySchemaName(committed, example.method, example.path));
        expect(errorsOf(validate, example.body)).to.equal('');
      });
    });

    it('the batch example: valid as a batch, each item valid or invalid as its documented answer says', () => {
      const batch = examples.find((e) => e.path === '/v1/messages/batch')!;
      const api = read('docs/API.md');
      const answer = JSON.parse(/## POST \/v1\/messages\/batch[\s\S]*?```json\n([\s\S]*?)```/.exec(api)![1]) as {
        results: Array<{ index: number; status: number }>;
      };
      const messages = (batch.body as { messages: unknown[] }).messages;
      const send = schemaOf('SendRequest');
      expect(messages.map((m) => send(m))).to.deep.equal(answer.results.map((r) => r.status !== 400));
      const fixed = { messages: messages.filter((m) => send(m)) };
      expect(errorsOf(schemaOf(bodySchemaName(committed, 'POST', '/v1/messages/batch')), fixed)).to.equal('');
    });
  });

  describe('refuses bodies the ingress refuses', () => {
    const send = schemaOf('SendRequest');
    const bad: Array<[string, unknown]> = [
      ['no recipient', { text: { body: 'hi' } }],
      ['a recipient that is no phone number', { to: 'alice', text: { body: 'hi' } }],
      ['an unknown field', { to: '15551234567', text: { body: 'hi' }, colour: 'red' }],
      ['an empty text', { to: '15551234567', text: { body: '' } }],
      ['an unknown priority', { to: '15551234567', text: { body: 'hi' }, priority: 'high' }],
      ['a sendAt without offset', { to: '15551234567', text: { body: 'hi' }, sendAt: '2030-01-01T08:00:00' }],
      ['an image with both link and id', { to: '15551234567', type: 'image', image: { link: 'https://example.com/a.png', id: '1' } }],
      ['an unknown type', { to: '15551234567', type: 'poll', poll: {} }],
      [
        'four reply buttons',
        {
          to: '15551234567',
          type: 'interactive',
          interactive: {
            type: 'button',
            body: { text: 'x' },
            action: { buttons: ['a', 'b', 'c', 'd'].map((id) => ({ type: 'reply', reply: { id, title: id } })) },
          },
        },
      ],
      [
        'a list with an image header',
        {
          to: '15551234567',
          type: 'interactive',
          interactive: {
            type: 'list',
            header: { type: 'image', image: { id: '1' } },
            body: { text: 'x' },
            action: { button: 'Open', sections: [{ rows: [{ id: 'r', title: 'R' }] }] },
          },
        },
      ],
      [
        'a template component without type',
        { to: '15551234567', type: 'template', template: { name: 'n', language: { code: 'en' }, components: [{ parameters: [] }] } },
      ],
      ['a read receipt with a type', { to: '15551234567', type: 'text', status: 'read', message_id: 'wamid.1' }],
    ];
    for (const [what, body] of bad) {
      it(what, () => {
        expect(() => parseSendRequest(body), 'the ingress').to.throw(RequestError);
        expect(send(body), JSON.stringify(body)).to.equal(false);
      });
    }

    it('a batch of none or of 501', () => {
      const batch = schemaOf('BatchRequest');
      expect(batch({ messages: [] })).to.equal(false);
      expect(batch({ messages: Array.from({ length: 501 }, () => ({ to: '15551234567', text: { body: 'x' } })) })).to.equal(false);
    });
  });

  describe('GET /openapi.json on a running ingress', () => {
    let iso: Isolation;
    let ingress: Ingress;

    before(async () => {
      iso = await isolate('openapi');
      ingress = await startIngress(iso.config({ ingressPort: 0, metricsPort: 0 }));
    });
    after(async () => {
      await ingress?.close();
      await iso?.cleanup();
    });

    it('serves the committed document as JSON without a token', async () => {
      const res = await request(`${ingress.url}/openapi.json`);
      expect(res.statusCode).to.equal(200);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      expect(await res.body.json()).to.deep.equal(committed);
    });

    it('answers as the document says: send, batch, status record, errors, health', async () => {
      const token = { authorization: `Bearer ${ingress.rt.cfg.ingressApiToken}`, 'content-type': 'application/json' };
      const post = (path: string, body: unknown, headers: Record<string, string> = token) =>
        request(`${ingress.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      expect(answerSchema('POST', '/v1/messages', 202)({ id: 'x', status: 'accepted' }), 'the check bites').to.equal(false);
      const sent = await expectDocumented(
        'POST',
        '/v1/messages',
        await post('/v1/messages', { to: '15551234567', text: { body: 'hi' }, idempotencyKey: 'k1' }),
        202,
      );
      await expectDocumented('POST', '/v1/messages', await post('/v1/messages', { to: '15551234567', text: { body: 'hi' }, idempotencyKey: 'k1' }), 200);
      await expectDocumented(
        'POST',
        '/v1/messages',
        await post('/v1/messages', { to: '15551234567', text: { body: 'hi' }, sendAt: new Date(Date.now() + 3_600_000).toISOString() }),
        202,
      );
      await expectDocumented('POST', '/v1/messages', await post('/v1/messages', { to: '15551234567', text: { body: '' } }), 400);
      await expectDocumented('POST', '/v1/messages', await post('/v1/messages', {}, { 'content-type': 'application/json' }), 401);
      const batch = {
        messages: [
          { to: '15551234567', text: { body: 'a' } },
          { to: 'x', text: { body: 'b' } },
        ],
      };
      await expectDocumented('POST', '/v1/messages/batch', await post('/v1/messages/batch', batch), 207);
      await expectDocumented('GET', '/v1/messages/{id}', await request(`${ingress.url}/v1/messages/${sent.id}`, { headers: token }), 200);
      await expectDocumented('GET', '/v1/messages/{id}', await request(`${ingress.url}/v1/messages/01K2Z8X4J6M3Q5R7T9V1W3Y5A7`, { headers: token }), 404);
      await expectDocumented('GET', '/healthz', await request(`${ingress.url}/healthz`), 200);
      await expectDocumented('GET', '/readyz', await request(`${ingress.url}/readyz`), 200);
    });
  });
});
