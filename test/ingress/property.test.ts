/**
 * Issue #25's proof: generated requests, valid by the schema but extreme in length, script
 * (multi-byte, combining, RTL), nesting and header values, single and in batches, interleaved with
 * ordinary traffic, thrown at a running fleet (ingress, dispatcher, sender, the simulator as the
 * provider). Audited at the provider: every 202 delivered exactly once and in acceptance order per
 * user, every 4xx published nothing, no 5xx, and the ingress still answers 202 afterwards.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { useFleet } from '../support/use-fleet.js';
import { waitForAll } from '../sender/traffic.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 120);
const SEED = Number(process.env.PROPERTY_SEED ?? 250425);
const USERS = ['15554440001', '15554440002', '15554440003', '15554440004'];

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

const sendRequest = fc
  .record({
    to: fc.constantFrom(...USERS),
    content,
    urgent: fc.boolean(),
    correlationId: fc.option(anyText(120, 0), { nil: undefined }),
    idempotencyKey: fc.option(anyText(90), { nil: undefined }),
  })
  .map(({ to, content: c, urgent, correlationId, idempotencyKey }) => ({
    to,
    ...c,
    ...(urgent ? { priority: 'urgent' } : {}),
    ...(correlationId !== undefined ? { correlationId } : {}),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
  }));

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

  const t = useFleet('property');

  it(`answers ${RUNS} generated calls with 202/200/400 only, and the provider gets every 202 once, in order per user`, async () => {
    const accepted: Array<{ id: string; to: string; urgent: boolean }> = [];
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
            for (const item of (r.body as { results: Array<{ index: number; status: number; id?: string }> }).results) {
              count(item.status);
              if (item.status === 202) accepted.push({ id: item.id!, to: batch[item.index].to, urgent: batch[item.index].priority === 'urgent' });
              else if (item.status !== 200 && item.status !== 400) note('batch item', item.status, item);
            }
          } else if (r.status !== 400) note('batch', r.status, r.body);
        }
        const r = await t.fleet.send(single, headers);
        count(r.status);
        if (r.status === 202) accepted.push({ id: r.body.id, to: single.to, urgent: single.priority === 'urgent' });
        else if (r.status !== 200 && r.status !== 400) note('single', r.status, r.body);
        if (r.status === 400) expect(r.body.field, 'a 400 names its field').to.be.a('string');
        // Ordinary traffic in between: the ingress keeps answering 202.
        const plain = await t.fleet.send({ to: single.to, type: 'text', text: { body: 'ordinary' } });
        if (plain.status !== 202) note('ordinary', plain.status, plain.body);
        else accepted.push({ id: plain.body.id, to: single.to, urgent: false });
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`      generated answers by status: ${JSON.stringify(counts)}`);
    expect(unexpected, 'answers other than 202/200/400').to.deep.equal([]);
    expect(counts[202] ?? 0, 'the generators reach the 202 path').to.be.greaterThan(RUNS / 4);
    expect(counts[400] ?? 0, 'and the 400 path').to.be.greaterThan(RUNS / 10);

    const ids = new Set(accepted.map((a) => a.id));
    await waitForAll(t.fleet, [...ids], 120_000);
    const delivered = t.fleet.sim.accepted().filter((e) => e.id && ids.has(e.id));
    expect(delivered.length, 'each 202 exactly once').to.equal(ids.size);
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
