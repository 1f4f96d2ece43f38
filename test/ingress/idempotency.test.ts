import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { scanAll } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { capShards, sendQueues, peek, totalDepth } from './lanes.js';

describe('ingress: idempotency keys', function () {
  // No dispatcher: every publish stays in the lanes and is counted there.
  const t = useFleet('idem', { dispatchers: 0, senders: 0 });

  const msg = (idempotencyKey: string, body = 'hi') => ({ to: '15554440001', text: { body }, idempotencyKey });

  it('answers a repeat with the first id and 200, publishing nothing', async () => {
    const first = await t.fleet.send(msg('order-1'));
    expect(first.status).to.equal(202);
    const again = await t.fleet.send(msg('order-1', 'a different body, same key'));
    expect(again.status).to.equal(200);
    expect(again.body).to.deep.equal({ id: first.body.id, status: 'accepted', duplicate: true });
    const got = await peek(t.fleet.cfg.amqpUrl, sendQueues(t.fleet));
    expect(got.map((m) => m.env.id)).to.deep.equal([first.body.id]);
    expect(got[0].env.idempotencyKey).to.equal('order-1');
  });

  it('publishes once when the same key arrives many times at once', async () => {
    const before = await totalDepth(t.fleet);
    const answers = await Promise.all(Array.from({ length: 25 }, () => t.fleet.send(msg('order-2'))));
    const accepted = answers.filter((a) => a.status === 202);
    expect(accepted).to.have.length(1);
    expect(answers.filter((a) => a.status === 200)).to.have.length(24);
    expect(new Set(answers.map((a) => a.body.id))).to.deep.equal(new Set([accepted[0].body.id]));
    expect(await totalDepth(t.fleet)).to.equal(before + 1);
  });

  it("frees the key when the publish fails, so the client's retry gets in", async () => {
    const before = await totalDepth(t.fleet);
    await capShards(t.iso, t.fleet, 0);
    const refused = await t.fleet.send(msg('order-3'));
    expect(refused.status).to.equal(503);
    expect(refused.headers['retry-after']).to.equal(String(t.fleet.cfg.ingressRetryAfterS));
    expect(await totalDepth(t.fleet)).to.equal(before);
    const stillRefused = await t.fleet.send(msg('order-3'));
    expect(stillRefused.status, 'the retry is tried again, not taken for a duplicate').to.equal(503);
    await capShards(t.iso, t.fleet, 100_000);
    const ok = await waitFor(
      async () => {
        const r = await t.fleet.send(msg('order-3'));
        return r.status === 202 ? r : null;
      },
      { what: 'a 202 once the broker takes messages again', intervalMs: 200 },
    );
    expect(await totalDepth(t.fleet)).to.equal(before + 1);
    const repeat = await t.fleet.send(msg('order-3'));
    expect(repeat.status).to.equal(200);
    expect(repeat.body.id).to.equal(ok.body.id);
    // The refused messages left no status records behind: one record per message in the lanes.
    const keys = await scanAll(t.iso.redis, `${t.iso.redisKeyPrefix}:*:status:*`);
    expect(keys).to.have.length(await totalDepth(t.fleet));
  });

  it('treats repeats of a key inside one batch as duplicates of the first', async () => {
    const before = await totalDepth(t.fleet);
    const r = await t.fleet.call('POST', '/v1/messages/batch', {
      body: { messages: [msg('order-4'), msg('order-5'), msg('order-4'), msg('order-1')] },
    });
    expect(r.status).to.equal(202);
    const [a, b, c, d] = r.body.results;
    expect(a).to.include({ index: 0, status: 202, state: 'accepted' });
    expect(b).to.include({ index: 1, status: 202 });
    expect(c).to.include({ index: 2, status: 200, state: 'duplicate', id: a.id });
    expect(d).to.include({ index: 3, status: 200, state: 'duplicate' });
    expect(await totalDepth(t.fleet)).to.equal(before + 2);
  });
});
