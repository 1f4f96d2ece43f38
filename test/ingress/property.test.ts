/**
 * Issue #25's proof: generated requests, valid by the schema but extreme in length, script
 * (multi-byte, combining, RTL), nesting and header values, single and in batches, interleaved with
 * ordinary traffic, thrown at a running fleet (ingress, dispatcher, sender, the simulator as the
 * provider). Audited at the provider: every 202 delivered exactly once and in acceptance order per
 * user, from the business number its `from` named, every 4xx published nothing, no 5xx, and the
 * ingress still answers 202 afterwards.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { useFleet } from '../support/use-fleet.js';
import { waitForAll } from '../sender/traffic.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 120);
const SEED = Number(process.env.PROPERTY_SEED ?? 250425);
const USERS = ['15554440001', '15554440002', '15554440003', '15554440004'];
/** The fleet's business numbers (WHATSAPP_NUMBERS); the first is the default. */
const NUMBERS = [
  { id: '106540352242922', alias: 'sales' },
  { id: '106540352242923', alias: 'support' },
];
const NUMBER_OF = new Map(NUMBERS.flatMap((n) => [[n.id, n.id] as const, [n.alias, n.id] as const]));
const CONFIGURED = 'sales (106540352242922), support (106540352242923)';
/** What a 400 may name before `from`: the header, and the request's fields the schema checks first. */
const CHECKED_BEFORE_FROM = new Set(['X-Correlation-Id', 'idempotencyKey', 'correlationId']);

/** Text of any script: full Unicode code points, graphemes, or a repeated RTL / combining / emoji unit. */
const anyText = (maxLength: number, minLength = 1) =>
  fc.oneof(
    fc.string({ unit: 'binary', minLength, maxLength }),
    fc.string({ unit: 'grapheme', minLength, maxLength }),
    fc
      .tuple(fc.constantFrom('ש', '\u200fع', 'e\u0301\u0323', '👋🏽', '漢', '€', 'a'), fc.integer({ min: minLength, max: maxLength }))
      .map(([u, n]) => u.repeat(Math.max(1, Math.floor(n / u.length)))),
  );

/** An object nested `depth` levels deep (a careless client's recursion). */
const nested = (depth: number): Record<string, unknown> => {
  let v: Record<string, unknown> = { leaf: 'x' };
  for (let i = 0; i < depth; i++) v = { n: v };
  return v;
};

const content = fc.oneof(
  anyText(2048).map((body) => ({ type: 'text', text: { body } })),
  fc
    .record({
      name: anyText(80),
      params: fc.array(anyText(70), { maxLength: 6 }),
      deep: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
    })
    .map(({ name, params, deep }) => ({
      type: 'template',
      template: {
        name,
        language: { code: 'en_US' },
        components: [
          { type: 'body', parameters: params.map((text) => ({ type: 'text', text })) },
          ...(deep ? [{ type: 'header', parameters: [{ type: 'text', text: 'h', extra: nested(deep) }] }] : []),
        ],
      },
    })),
  fc.record({ body: anyText(1100), titles: fc.array(anyText(24), { minLength: 1, maxLength: 4 }) }).map(({ body, titles }) => ({
    type: 'interactive',
    interactive: {
      type: 'button',
      body: { text: body },
      action: { buttons: titles.map((title, i) => ({ type: 'reply', reply: { id: `b${i}`, title } })) },
    },
  })),
);

/**
 * `from`: absent, a configured id or alias, or a value that names no number — text of any script
 * up to the schema's 64 (UTF-16 code units, so 64 CJK characters are 192 bytes and pass the bound,
 * 33 emoji are 66 units and do not), near misses of a configured one, empty, 65 and more, not a
 * string at all.
 */
const fromField = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom(...NUMBER_OF.keys()) },
  {
    weight: 2,
    arbitrary: fc.oneof(
      anyText(64).filter((s) => !NUMBER_OF.has(s)),
      fc.constantFrom('', 'SALES', ' sales', 'sales ', 'sales\u0000', 'ѕales', 'ｓａｌｅｓ', '+106540352242922', '0106540352242922', '1065403522429221'),
      fc.constantFrom('a'.repeat(64), 'a'.repeat(65), '漢'.repeat(64), '漢'.repeat(65), '👋'.repeat(32), '👋'.repeat(33), 'é'.repeat(64)),
      fc.string({ minLength: 65, maxLength: 400 }),
      fc.oneof(fc.integer(), fc.constant(Number(NUMBERS[0].id)), fc.boolean(), fc.constant(null), fc.constant(['sales']), fc.constant({ id: NUMBERS[0].id })),
    ),
  },
);

const sendRequest = fc
  .record({
    to: fc.constantFrom(...USERS),
    content,
    urgent: fc.boolean(),
    correlationId: fc.option(anyText(120, 0), { nil: undefined }),
    idempotencyKey: fc.option(anyText(90), { nil: undefined }),
    from: fromField,
  })
  .map(({ to, content: c, urgent, correlationId, idempotencyKey, from }) => ({
    to,
    ...c,
    ...(urgent ? { priority: 'urgent' } : {}),
    ...(correlationId !== undefined ? { correlationId } : {}),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    ...(from !== undefined ? { from } : {}),
  }));

type SendBody = Record<string, unknown> & { to: string; priority?: string };

/** The number a request goes out from: its `from`'s, the default's without one; undefined: `from` names none. */
const numberOf = (req: SendBody): string | undefined => ('from' in req ? NUMBER_OF.get(req.from as string) : NUMBERS[0].id);

/**
 * What is wrong with one answer to `req` (single, or batch item `prefix` = `messages.<i>.`), as for
 * `from`: a `from` naming no number is never accepted and is a 400 that names `from` (or a field
 * checked before it), listing the configured numbers when it was a string within the bounds.
 */
function fromProblem(req: SendBody, status: number, body: { field?: string; message?: string; error?: string }, prefix = ''): string | null {
  if (numberOf(req) !== undefined) return null;
  const what = `from ${JSON.stringify(req.from)?.slice(0, 80)}`;
  if (status !== 400) return `${what}: answered ${status}`;
  const field = body.field?.slice(prefix.length);
  if (field !== undefined && CHECKED_BEFORE_FROM.has(field)) return null;
  if (field !== 'from') return `${what}: the 400 names ${body.field}`;
  const inBounds = typeof req.from === 'string' && req.from.length >= 1 && req.from.length <= 64;
  // A single request's 400 says it in `message`, a batch item's in `error`.
  const message = prefix === '' ? body.message : body.error;
  if (inBounds && !message?.endsWith(`is not a configured business number (configured: ${CONFIGURED})`)) return `${what}: ${message}`;
  return null;
}

/** Header values a client may send: printable ASCII, or Latin-1 bytes beyond it; sometimes far too long. */
const correlationHeader = fc.option(
  fc
    .string({
      unit: fc
        .integer({ min: 0x20, max: 0xff })
        .filter((c) => c !== 0x7f)
        .map((c) => String.fromCharCode(c)),
      minLength: 1,
      maxLength: 260,
    })
    .filter((s) => s.trim() === s && s.length > 0),
  { nil: undefined },
);

const call = fc.record({
  batch: fc.option(fc.array(sendRequest, { minLength: 1, maxLength: 12 }), { nil: undefined }),
  single: sendRequest,
  header: correlationHeader,
});

describe('ingress: generated extreme requests against a running fleet (property-based)', function () {
  this.timeout(300_000);

  const t = useFleet('property', { overrides: { whatsappNumbers: JSON.stringify(NUMBERS) } });

  it(`answers ${RUNS} generated calls with 202/200/400 only, and the provider gets every 202 once, in order per user`, async () => {
    const accepted: Array<{ id: string; to: string; urgent: boolean; number: string }> = [];
    const accept = (id: string, req: SendBody) => accepted.push({ id, to: req.to, urgent: req.priority === 'urgent', number: numberOf(req)! });
    const badFrom = { single: 0, items: 0 };
    const unexpected: string[] = [];
    const counts: Record<string, number> = {};
    const count = (status: number) => void (counts[status] = (counts[status] ?? 0) + 1);
    const note = (what: string, status: number, body: unknown) => unexpected.push(`${what}: ${status} ${JSON.stringify(body).slice(0, 300)}`);

    await fc.assert(
      fc.asyncProperty(call, async ({ batch, single, header }) => {
        const headers: Record<string, string> = header !== undefined ? { 'x-correlation-id': header } : {};
        if (batch) {
          const r = await t.fleet.call('POST', '/v1/messages/batch', { body: { messages: batch }, headers });
          if (r.status === 202 || r.status === 207) {
            for (const item of (r.body as { results: Array<{ index: number; status: number; id?: string; field?: string; message?: string }> }).results) {
              count(item.status);
              const req = batch[item.index];
              if (item.status === 202) accept(item.id!, req);
              else if (item.status !== 200 && item.status !== 400) note('batch item', item.status, item);
              const wrong = fromProblem(req, item.status, item, `messages.${item.index}.`);
              if (wrong) note('batch item', item.status, wrong);
              if (item.field === `messages.${item.index}.from`) badFrom.items++;
            }
          } else if (r.status !== 400) note('batch', r.status, r.body);
        }
        const r = await t.fleet.send(single, headers);
        count(r.status);
        if (r.status === 202) accept(r.body.id, single);
        else if (r.status !== 200 && r.status !== 400) note('single', r.status, r.body);
        if (r.status === 400) expect(r.body.field, 'a 400 names its field').to.be.a('string');
        const wrong = fromProblem(single, r.status, r.body);
        if (wrong) note('single', r.status, wrong);
        if (r.body?.field === 'from') badFrom.single++;
        // Ordinary traffic in between: the ingress keeps answering 202.
        const plain = await t.fleet.send({ to: single.to, type: 'text', text: { body: 'ordinary' } });
        if (plain.status !== 202) note('ordinary', plain.status, plain.body);
        else accept(plain.body.id, { to: single.to });
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`      generated answers by status: ${JSON.stringify(counts)}; 400s naming from: ${JSON.stringify(badFrom)}`);
    expect(unexpected, 'answers other than 202/200/400, or a wrong answer to a from').to.deep.equal([]);
    expect(badFrom.single + badFrom.items, 'the generators reach the 400 for from').to.be.greaterThan(RUNS / 10);
    expect(counts[202] ?? 0, 'the generators reach the 202 path').to.be.greaterThan(RUNS / 4);
    expect(counts[400] ?? 0, 'and the 400 path').to.be.greaterThan(RUNS / 10);

    const ids = new Set(accepted.map((a) => a.id));
    await waitForAll(t.fleet, [...ids], 120_000);
    const delivered = t.fleet.sim.accepted().filter((e) => e.id && ids.has(e.id));
    expect(delivered.length, 'each 202 exactly once').to.equal(ids.size);
    // Each from the number its `from` named (the default without one).
    const numberOfId = new Map(accepted.map((a) => [a.id, a.number]));
    expect(
      delivered.filter((e) => e.phoneNumberId !== numberOfId.get(e.id!)).map((e) => `${e.id}: sent from ${e.phoneNumberId}, not ${numberOfId.get(e.id!)}`),
      'sends from the wrong number',
    ).to.deep.equal([]);
    expect(new Set(delivered.map((e) => e.phoneNumberId)), 'both numbers sent').to.have.property('size', NUMBERS.length);
    // Nothing rejected was published: the ingress confirmed exactly the 202s.
    const metrics = (await t.fleet.ingress.rt.metrics.render()).body;
    const published = [...metrics.matchAll(/^postmaster_published_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(published, 'publishes confirmed by the ingress').to.equal(ids.size);
    // Per user, the ordered lane's messages arrive in acceptance order (urgent ones are not ordered with them).
    for (const user of USERS) {
      const want = accepted.filter((a) => a.to === user && !a.urgent).map((a) => a.id);
      const wanted = new Set(want);
      const got = delivered.filter((e) => wanted.has(e.id!)).map((e) => e.id);
      expect(got, `order of ${user}`).to.deep.equal(want);
    }
    const after = await t.fleet.send({ to: USERS[0], type: 'text', text: { body: 'still here' } });
    expect(after.status).to.equal(202);
  });
});
