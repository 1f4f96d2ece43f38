import { expect } from 'chai';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

/**
 * The ingress's `accepted` status record is written while the message is being published, not
 * before: a message does not wait a Redis round trip before its publish. With Redis refusing writes
 * for a while (CLIENT PAUSE … WRITE), the message still reaches its send lane at once; the 202
 * waits for the record, and the record is complete afterwards.
 */
describe('ingress: the status record beside the publish', function () {
  const PAUSE_MS = 1500;
  const USER = '15557780001';

  // No sender: what the ingress publishes stays in the send lane, where the test counts it.
  const t = useFleet('status-beside', { dispatchers: 0, senders: 0 });
  before(() => t.defer('unpause Redis', () => t.iso.redis.call('CLIENT', 'UNPAUSE').catch(() => {})));

  const sendShards = () => Array.from({ length: t.fleet.cfg.shards }, (_, i) => t.fleet.ingress.rt.topology.names.shardQueue('send', i));
  const inSendLane = async () => Object.values(await queueDepths(t.iso.amqpUrl, sendShards())).reduce((a, b) => a + b, 0);

  it('publishes while Redis is paused for writes, and records the status once it is back', async () => {
    // Warm-up on the same user (so the same shard): connections and scripts are in place.
    const warm = await t.fleet.send({ to: USER, type: 'text', text: { body: 'warm-up' } });
    expect(warm.status).to.equal(202);
    await waitFor(async () => (await inSendLane()) === 1, { what: 'the warm-up message in the send lane' });

    await t.iso.redis.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
    const pausedAt = Date.now();
    let answeredAt = 0;
    const answer = t.fleet.send({ to: USER, type: 'text', text: { body: 'while Redis waits' } }).then((r) => {
      answeredAt = Date.now();
      return r;
    });
    await waitFor(async () => (await inSendLane()) === 2, { what: 'the message in the send lane during the pause', timeoutMs: PAUSE_MS * 4 });
    const arrivedAt = Date.now();
    expect(arrivedAt - pausedAt, 'reached the send lane before Redis took writes again').to.be.below(PAUSE_MS);
    expect(answeredAt, 'no 202 before its accepted record is written').to.equal(0);

    const res = await answer;
    expect(res.status).to.equal(202);
    expect(answeredAt - pausedAt, 'the 202 waited for Redis').to.be.at.least(PAUSE_MS - 100);
    const rec = (await t.fleet.call('GET', `/v1/messages/${res.body.id}`)).body;
    expect(rec.history.map((h: { status: string }) => h.status)).to.deep.equal(['accepted']);
  });
});
