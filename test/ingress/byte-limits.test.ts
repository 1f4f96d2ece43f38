/**
 * Issue #25: values that become AMQP short strings (255 bytes at most) are bounded in BYTES at the
 * door. One correlationId of 100 × "€" (100 characters, 300 bytes) used to take the ingress down.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { postWebhook } from '../webhooks/meta.js';
import { sendQueues, totalDepth } from './lanes.js';

const LIMIT = 200;
const EURO_300_BYTES = '€'.repeat(100);
const bytes = (s: string) => new TextEncoder().encode(s).length;

/** `prefix`, then `unit` repeated, then ASCII up to exactly `LIMIT` bytes (each script's width differs). */
function atLimit(unit: string, prefix = ''): string {
  const n = Math.floor((LIMIT - bytes(prefix)) / bytes(unit));
  return prefix + unit.repeat(n) + 'a'.repeat(LIMIT - bytes(prefix) - n * bytes(unit));
}

const SCRIPTS: Array<[string, string]> = [
  ['CJK', '漢'],
  ['emoji', '😀'],
  ['emoji with a skin tone', '👋🏽'],
  ['combining marks', 'e\u0301\u0323'],
  ['Hebrew (RTL)', 'ש'],
  ['Arabic with an RTL mark', '\u200fع'],
];

/**
 * The AMQP correlation-id of each message waiting in `queues`, by message-id. Consumed without acks
 * (basic.get does not work on single-active-consumer quorum queues); they go back when the channel closes.
 */
async function correlationProperties(amqpUrl: string, queues: string[]): Promise<Map<string, string | undefined>> {
  const depths = await queueDepths(amqpUrl, queues);
  const { default: amqplib } = await import('amqplib');
  const conn = await amqplib.connect(amqpUrl);
  const out = new Map<string, string | undefined>();
  try {
    for (const q of queues.filter((q) => depths[q] > 0)) {
      const ch = await conn.createChannel();
      await new Promise<void>((resolve) => {
        let got = 0;
        void ch.consume(q, (m) => {
          if (m) out.set(m.properties.messageId, m.properties.correlationId);
          if (m && ++got === depths[q]) resolve();
        });
      });
      await ch.close();
    }
  } finally {
    await conn.close();
  }
  return out;
}

describe('ingress: AMQP-bound values are limited in bytes (issue #25)', function () {
  const ordinary = { to: '15551234567', text: { body: 'hi' } };

  const t = useFleet('byte-limits', { dispatchers: 0, senders: 0 });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    t.fleet.call('POST', '/v1/messages', { body, headers: { 'content-type': 'application/json', ...headers } });
  const expect400 = (r: { status: number; body: any }, field: string) => {
    expect(r.status, JSON.stringify(r.body)).to.equal(400);
    expect(r.body.field).to.equal(field);
    expect(r.body.message.startsWith(`${field}: `), r.body.message).to.equal(true);
  };

  it('regression: a correlationId of 100 × "€" is a 400 naming it, and the ingress goes on', async () => {
    const r = await post({ ...ordinary, correlationId: EURO_300_BYTES });
    expect400(r, 'correlationId');
    expect(r.body.message).to.equal('correlationId: must be at most 200 bytes in UTF-8 (got 300)');
    for (let i = 0; i < 3; i++) expect((await post(ordinary)).status).to.equal(202);
  });

  it('regression: an X-Correlation-Id of 100 × "€" (its UTF-8 bytes) is a 400 naming the header, and the ingress goes on', async () => {
    const raw = Buffer.from(EURO_300_BYTES).toString('latin1'); // the bytes on the wire, as Node reads them
    const r = await post(ordinary, { 'x-correlation-id': raw });
    expect400(r, 'X-Correlation-Id');
    expect(r.body.message).to.contain('at most 200 bytes (got 300)');
    expect((await post(ordinary)).status).to.equal(202);
  });

  it('takes an X-Correlation-Id of 200 printable ASCII characters and refuses 201, non-ASCII or control characters', async () => {
    const ok = 'a !"#$%&\'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~'.padEnd(LIMIT, 'x');
    const r = await post(ordinary, { 'x-correlation-id': ok });
    expect(r.status).to.equal(202);
    expect((await correlationProperties(t.fleet.cfg.amqpUrl, sendQueues(t.fleet))).get(r.body.id)).to.equal(ok);
    for (const bad of ['x'.repeat(LIMIT + 1), 'caf\xe9', 'a\tb']) expect400(await post(ordinary, { 'x-correlation-id': bad }), 'X-Correlation-Id');
    const batch = await t.fleet.call('POST', '/v1/messages/batch', { body: { messages: [ordinary] }, headers: { 'x-correlation-id': 'x'.repeat(LIMIT + 1) } });
    expect400(batch, 'X-Correlation-Id');
  });

  for (const [script, unit] of SCRIPTS) {
    it(`${script}: correlationId and idempotencyKey pass at exactly ${LIMIT} bytes and fail one byte over`, async () => {
      const exact = atLimit(unit);
      expect(bytes(exact)).to.equal(LIMIT);
      const key = atLimit(unit, 'key:');
      const r = await post({ ...ordinary, correlationId: exact, idempotencyKey: key });
      expect(r.status, JSON.stringify(r.body)).to.equal(202);
      expect((await correlationProperties(t.fleet.cfg.amqpUrl, sendQueues(t.fleet))).get(r.body.id)).to.equal(exact);
      const over = await post({ ...ordinary, correlationId: `${exact}b` });
      expect400(over, 'correlationId');
      expect(over.body.message).to.equal(`correlationId: must be at most ${LIMIT} bytes in UTF-8 (got ${LIMIT + 1})`);
      expect400(await post({ ...ordinary, idempotencyKey: `${key}b` }), 'idempotencyKey');
    });
  }

  it('refuses a correlationId with control characters and ids with unpaired surrogates', async () => {
    expect400(await post({ ...ordinary, correlationId: 'line\nbreak' }), 'correlationId');
    expect400(await post({ ...ordinary, correlationId: 'a\u0085b' }), 'correlationId');
    expect400(await post('{"to":"15551234567","text":{"body":"hi"},"correlationId":"a\\ud800"}'), 'correlationId');
    expect400(await post('{"to":"15551234567","text":{"body":"hi"},"idempotencyKey":"k\\udc00"}'), 'idempotencyKey');
  });

  it('rejects only the batch items over the limit, naming them', async () => {
    const messages = [ordinary, { ...ordinary, correlationId: EURO_300_BYTES }, { ...ordinary, idempotencyKey: '😀'.repeat(51) }];
    const r = await t.fleet.call('POST', '/v1/messages/batch', { body: { messages } });
    expect(r.status).to.equal(207);
    expect(r.body.results.map((x: any) => [x.status, x.field])).to.deep.equal([
      [202, undefined],
      [400, 'messages.1.correlationId'],
      [400, 'messages.2.idempotencyKey'],
    ]);
  });

  it('property: any Unicode correlationId is a 400 iff it is over 200 bytes (or holds a control character)', async () => {
    const text = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 80 }));
    await fc.assert(
      fc.asyncProperty(text, async (id) => {
        const r = await post({ ...ordinary, correlationId: id });
        const refused = bytes(id) > LIMIT || /\p{Cc}/u.test(id);
        expect(r.status, `${JSON.stringify(id)} (${bytes(id)} bytes): ${JSON.stringify(r.body)}`).to.equal(refused ? 400 : 202);
        if (refused) expect(r.body.field).to.equal('correlationId');
      }),
      { numRuns: 100 },
    );
    expect((await post(ordinary)).status).to.equal(202);
  });

  it('property: any Unicode idempotencyKey is a 400 iff it is over 200 bytes; a repeat is a 200', async () => {
    const seen = new Set<string>();
    // Strings that straddle the limit, and free ones: a run of full-range code points cut to 200 bytes, plus maybe one byte.
    const straddle = fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }), fc.boolean()).map(([s, over]) => {
      let cut = '';
      for (const ch of s.repeat(Math.ceil((LIMIT + 1) / bytes(s)))) {
        if (bytes(cut + ch) > LIMIT) break;
        cut += ch;
      }
      return over ? cut + 'x'.repeat(LIMIT + 1 - bytes(cut)) : cut;
    });
    const key = fc.oneof(straddle, fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }));
    await fc.assert(
      fc.asyncProperty(key, async (k) => {
        const r = await post({ ...ordinary, idempotencyKey: k });
        const want = bytes(k) > LIMIT ? 400 : seen.has(k) ? 200 : 202;
        expect(r.status, `${JSON.stringify(k)} (${bytes(k)} bytes): ${JSON.stringify(r.body)}`).to.equal(want);
        if (want !== 400) seen.add(k);
      }),
      { numRuns: 100 },
    );
    expect((await post(ordinary)).status).to.equal(202);
  });

  it('webhooks: skips (200) the events whose ids would not fit, publishing the rest', async () => {
    const before = await totalDepth(t.fleet);
    const msg = (from: string, id: string) => ({ from, id, timestamp: '1749416383', type: 'text', text: { body: 'hi' } });
    const status = (id: string) => ({ id, status: 'delivered', timestamp: '1749416383', recipient_id: '16505551234' });
    const value = {
      messaging_product: 'whatsapp',
      messages: [
        msg('16505551234', 'wamid.GOOD1'),
        msg('16505551234', `wamid.${EURO_300_BYTES}`),
        msg(EURO_300_BYTES, 'wamid.GOOD2'),
        msg('16505551234', 'x'.repeat(LIMIT + 1)),
      ],
      statuses: [status('wamid.GOOD3'), status('€'.repeat(70))],
    };
    const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'messages', value }] }] });
    const r = await postWebhook(t.fleet, body);
    expect(r.status, r.text).to.equal(200);
    expect(r.body).to.deep.equal({ received: 2, published: 2, duplicates: 0, skipped: 4 });
    expect(await totalDepth(t.fleet)).to.equal(before + 2);
    expect((await post(ordinary)).status).to.equal(202);
  });
});
