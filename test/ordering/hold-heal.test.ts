import { expect } from 'chai';
import amqplib from 'amqplib';
import { useFleet } from '../support/use-fleet.js';
import { queueDepths } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

/**
 * Strict order heals itself when the message a user waits for is lost. The user's first message
 * fails twice (503), so it waits in the 8 s tier while the user's three later messages are parked
 * (in the 1 s tier: it ends before the head is due). The test purges the 8 s tier — the head's only
 * copy, as an operator purging it in the management UI would. Without healing the three would be
 * parked forever; with it they go once a parked one enters the shard more than HOLD_GRACE_MS after
 * the head was due back.
 *
 * The bound: the head was due back at its second failure + 8 s; the first later message reaches the
 * provider no earlier than that + the grace (2 s), and no later than that + the grace + twice the
 * shortest tier (the parked message that heals may not be the next in line: that one comes back
 * within one more shortest tier) + 1 s of hops.
 */
describe("ordering: a held user whose head's retry copy is lost flows again within a bound", function () {
  this.timeout(120_000);
  const TIERS = [1000, 8000];
  const GRACE_MS = 2000;

  const t = useFleet('hold-heal', { overrides: { retryTiers: '1s,8s', shards: 2, holdGraceMs: GRACE_MS } });

  const text = (to: string, body: string) => ({ to, type: 'text', text: { body } });
  const metric = async (name: 'holdsHealed' | 'oldestHoldAge', labels: Record<string, string>) => {
    const m = await t.fleet.senders[0].rt.metrics[name].get();
    return m.values.find((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))?.value ?? 0;
  };

  it('drops the lost head after its tier + HOLD_GRACE_MS and sends the later messages in order', async () => {
    const user = '15558100001';
    t.fleet.sim.setFaults({ rules: [{ to: user, times: 2, status: 503, code: 131000 }] });
    const head = (await t.fleet.send(text(user, 'head'))).body.id as string;
    const later: string[] = [];
    for (const body of ['one', 'two', 'three']) later.push((await t.fleet.send(text(user, body))).body.id);

    const attempts = await waitFor(
      () => {
        const a = t.fleet.sim.ledger().filter((e) => e.id === head);
        return a.length === 2 ? a : null;
      },
      { timeoutMs: 15_000, what: "the head's two failed attempts" },
    );
    const longTier = t.fleet.ingress.rt.topology.names.retry(TIERS[1]);
    await waitFor(async () => (await queueDepths(t.iso.amqpUrl, [longTier]))[longTier] === 1, { timeoutMs: 5000, what: 'the head in the 8 s tier' });
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const { messageCount } = await (await conn.createChannel()).purgeQueue(longTier);
    await conn.close();
    expect(messageCount, "purged: the head's copy").to.equal(1);

    let maxAge = 0;
    const sampler = setInterval(() => void metric('oldestHoldAge', { stage: 'send' }).then((v) => (maxAge = Math.max(maxAge, v))), 100);
    try {
      await waitFor(() => t.fleet.sim.accepted().filter((e) => e.to === user).length === 3, { timeoutMs: 30_000, what: 'the three later messages' });
    } finally {
      clearInterval(sampler);
    }
    const sent = t.fleet.sim.accepted().filter((e) => e.to === user);
    expect(
      sent.map((e) => e.id),
      'in order, without the lost head',
    ).to.deep.equal(later);
    const dueBack = attempts[1].receivedAt + TIERS[1];
    const first = sent[0].receivedAt - dueBack;
    console.log(
      `      first later message ${first} ms after the head was due back (bound: ${GRACE_MS}–${GRACE_MS + 2 * TIERS[0] + 1000} ms); oldest hold seen ${maxAge.toFixed(1)} s`,
    );
    expect(first, 'not before the grace').to.be.at.least(GRACE_MS - 100);
    expect(first, 'within grace + 2 × shortest tier + 1 s').to.be.at.most(GRACE_MS + 2 * TIERS[0] + 1000);

    expect(await metric('holdsHealed', { stage: 'send', reason: 'lost' })).to.equal(1);
    expect(maxAge, "the oldest hold's age while the user waited").to.be.at.least(3);
    await waitFor(async () => (await metric('oldestHoldAge', { stage: 'send' })) === 0, { timeoutMs: 10_000, what: 'the hold age back to 0' });
    expect(await t.iso.redis.exists(`${t.iso.redisKeyPrefix}:postmaster:hold:send:${user}`), 'the hold is gone').to.equal(0);
    expect(t.fleet.senders[0].worker.ordering.heldCount()).to.equal(0);
  });
});
