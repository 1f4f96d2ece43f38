/**
 * A seeded generator of requests the ingress must reject: every one is wrong in at least one way
 * (auth, content type, JSON syntax, shape, value, size, signature), so none may be answered with a
 * 5xx and none may publish anything.
 */
import { sign } from '../../services/ingress/signature.js';
import { seededRandom } from '../../services/simulator/random.js';

export interface BadRequest {
  what: string;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Statuses this request may get. */
  expect: number[];
}

/** The simulator's mulberry32: small, fast, good enough to pick mutations reproducibly. */
export const rng = seededRandom;

type Obj = Record<string, any>;

export function generator(seed: number, token: string, appSecret: string) {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const int = (n: number) => Math.floor(rand() * n);
  const word = () => Array.from({ length: 1 + int(8) }, () => 'abcdefghijklmnopqrstuvwxyz'[int(26)]).join('');
  const phone = () => String(10_000_000_000 + int(89_999_999_999));

  const valid = (): Obj =>
    pick([
      () => ({ to: phone(), text: { body: word() } }),
      () => ({ to: phone(), type: 'text', text: { body: word() }, priority: 'urgent', urgency: int(10) }),
      () => ({ to: phone(), type: 'image', image: { link: 'https://example.com/x.png' }, idempotencyKey: word() }),
      () => ({ to: phone(), type: 'template', template: { name: word(), language: { code: 'en' } }, sendAt: new Date(Date.now() + 60_000).toISOString() }),
      () => ({
        to: phone(),
        type: 'interactive',
        interactive: { type: 'button', body: { text: 'x' }, action: { buttons: [{ type: 'reply', reply: { id: 'a', title: 'A' } }] } },
      }),
    ])();

  const WRONG = [null, 0, -1, 1.5, true, '', 'x', [], {}, [1], { a: 1 }];
  /** Each mutation makes a valid request invalid. */
  const mutations: Array<(r: Obj) => string> = [
    (r) => (delete r.to, 'to missing'),
    (r) => ((r.to = pick([...WRONG, 'abc', '123', '+', '1'.repeat(25), '+1 555 123'])), 'to wrong'),
    (r) => ((r[`x_${word()}`] = pick(WRONG)), 'unknown top-level field'),
    (r) => ((r.priority = pick(['high', 'low', 'URGENT', 'Normal', '', 0, null, ['urgent']])), 'priority wrong'),
    (r) => ((r.priority = 'urgent'), (r.urgency = pick([10, -1, 2.5, '5', null, 99])), 'urgency out of range'),
    (r) => ((r.priority = 'normal'), (r.urgency = int(10)), 'urgency without urgent'),
    (r) => ((r.sendAt = pick(['2030-01-01T00:00:00', 'tomorrow', '2030-13-01T00:00:00Z', 1893456000, '', null])), 'sendAt wrong'),
    (r) => ((r.sendAt = '2999-01-01T00:00:00Z'), 'sendAt too far'),
    (r) => ((r.idempotencyKey = pick(['', 'k'.repeat(201), 42, null, {}])), 'idempotencyKey wrong'),
    (r) => ((r.correlationId = pick(['c'.repeat(201), 7, []])), 'correlationId wrong'),
    (r) => ((r.type = pick(['txt', 'location', 'TEXT', '', 3, null])), 'type unknown'),
    (r) => ((r.type = 'text'), delete r.text, 'text missing'),
    (r) => ((r.type = 'text'), (r.text = { body: pick(['', 'b'.repeat(4097), 5, null, []]) }), 'text.body wrong'),
    (r) => ((r.type = 'text'), (r.text = { body: 'x', [word() + '_']: 1 }), 'unknown field in text'),
    (r) => ((r.type = 'image'), (r.image = pick([{}, { link: 'https://a.b/c', id: '1' }, { link: 'not a url' }, { id: '' }])), 'image wrong'),
    (r) => ((r.type = 'template'), (r.template = { name: word() }), 'template language missing'),
    (r) => (
      (r.type = 'interactive'),
      (r.interactive = pick([
        { type: 'button', body: { text: 'x' }, action: { buttons: [] } },
        { type: 'button', action: { buttons: [{ type: 'reply', reply: { id: 'a', title: 'A' } }] } },
        { type: 'list', body: { text: 'x' }, action: { button: 'b', sections: [] } },
        { type: 'cta_url', body: { text: 'x' }, action: { name: 'cta_url', parameters: { display_text: 'x', url: 'ftp://x' } } },
        { type: 'carousel', action: {} },
      ])),
      'interactive wrong'
    ),
  ];

  const json = { 'content-type': 'application/json', authorization: `Bearer ${token}` };

  const mutated = (): BadRequest => {
    const r = valid();
    const what = pick(mutations)(r);
    return { what, method: 'POST', path: '/v1/messages', headers: json, body: JSON.stringify(r), expect: [400] };
  };
  const kinds: Array<() => BadRequest> = [
    // Weighted: the shapes and values of the body are where most of the rules are.
    mutated,
    mutated,
    mutated,
    mutated,
    () => {
      const items = Array.from({ length: 1 + int(5) }, () => {
        const r = valid();
        pick(mutations)(r);
        return r;
      });
      return {
        what: 'batch of bad items',
        method: 'POST',
        path: '/v1/messages/batch',
        headers: json,
        body: JSON.stringify({ messages: items }),
        expect: [207],
      };
    },
    () => {
      const bad = pick([
        {},
        { messages: [] },
        { messages: 'x' },
        { messages: {} },
        { messages: [valid()], extra: 1 },
        [],
        { messages: Array(501).fill({ to: '1' }) },
      ]);
      return { what: 'bad batch envelope', method: 'POST', path: '/v1/messages/batch', headers: json, body: JSON.stringify(bad), expect: [400] };
    },
    () => {
      const text = JSON.stringify(valid());
      const body = pick([
        text.slice(0, 1 + int(text.length - 1)),
        `${text},`,
        text.replace(/"/g, "'"),
        '{' + word(),
        '{"to": NaN}',
        '\u0000{}',
        '{"a":1}{"b":2}',
      ]);
      return { what: 'malformed JSON', method: 'POST', path: pick(['/v1/messages', '/v1/messages/batch']), headers: json, body, expect: [400] };
    },
    () => ({ what: 'not an object', method: 'POST', path: '/v1/messages', headers: json, body: pick(['[]', '"x"', '42', 'null', 'true', '']), expect: [400] }),
    () => {
      const authorization = pick([undefined, `Bearer ${token}x`, `Bearer${token}`, `bearer ${token} x`, `Basic ${token}`, 'Bearer ', `Bearer ${word()}`]);
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) };
      return { what: 'auth', method: 'POST', path: pick(['/v1/messages', '/v1/messages/batch']), headers, body: JSON.stringify(valid()), expect: [401] };
    },
    () => {
      const ct = pick([
        'text/plain',
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonx',
        'application/json; charset=latin1',
      ]);
      return {
        what: `content-type ${ct}`,
        method: 'POST',
        path: '/v1/messages',
        headers: { ...json, 'content-type': ct },
        body: JSON.stringify(valid()),
        expect: [415],
      };
    },
    () => ({
      what: 'too large',
      method: 'POST',
      path: pick(['/v1/messages', '/v1/messages/batch', '/webhooks/whatsapp']),
      headers: json,
      body: `{"to":"${'1'.repeat(1024 * 1024 + int(1000))}"}`,
      expect: [413],
    }),
    () => {
      const body = JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [{ changes: [{ field: 'messages', value: { messages: [{ from: phone(), id: `wamid.${word()}`, type: 'text', text: { body: 'x' } }] } }] }],
      });
      const sig = pick([
        undefined,
        sign(body, appSecret + 'x'),
        sign(body + ' ', appSecret),
        'sha256=' + word(),
        sign(body, appSecret).toUpperCase().replace('SHA256', 'sha1'),
      ]);
      return {
        what: 'webhook signature',
        method: 'POST',
        path: '/webhooks/whatsapp',
        headers: { 'content-type': 'application/json', ...(sig ? { 'x-hub-signature-256': sig } : {}) },
        body,
        expect: sig ? [403] : [401],
      };
    },
    () => ({
      what: 'webhook verification',
      method: 'GET',
      path: `/webhooks/whatsapp?hub.mode=${pick(['subscribe', 'x'])}&hub.verify_token=${word()}&hub.challenge=1`,
      headers: {},
      expect: [403],
    }),
  ];

  return (): BadRequest => pick(kinds)();
}
