import { expect } from 'chai';
import type { ConsumeMessage } from 'amqplib';
import type { Redis } from 'ioredis';
import { newEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import type { StageMetrics } from '../../shared/stage/metrics.js';
import type { Keyspace } from '../../shared/platform/redis.js';
import { OrderingGuard, type HealReason } from '../../shared/stage/ordering.js';
import { StatusStore, type MessageStatus } from '../../shared/domain/status.js';
import { holdRuntime, type HoldRuntime } from '../support/hold-runtime.js';
import { waitFor } from '../support/wait.js';

/**
 * The heal rules of a strict-order hold, one by one, on the guard itself against Redis: which heads
 * a later delivery of the user stops waiting for, and which it keeps waiting for.
 */
describe('ordering: the rules by which a hold heals', function () {
  this.timeout(30_000);
  const GRACE_MS = 300;
  const TIERS = [100, 200];
  const SHARD = 0;
  let h: HoldRuntime;
  let keys: Keyspace;
  let redis: Redis;
  let metrics: StageMetrics;
  let guard: OrderingGuard;
  let status: StatusStore;
  let n = 0;

  before(() => {
    h = holdRuntime('hold-rules');
    ({ redis, keys, metrics } = h);
    const rt = h.runtime({ holdGraceMs: GRACE_MS, statusTtlS: 3600 }, TIERS);
    guard = new OrderingGuard(rt, 'send');
    status = new StatusStore(rt);
  });
  after(async () => {
    guard.stop();
    await h.cleanup();
  });

  const message = (user: string): Envelope =>
    newEnvelope({ kind: 'outbound', user, priority: 'normal', payload: { to: user, type: 'text', text: { body: 'x' } } });
  /** A delivery without a publish timestamp: it entered its queue now. */
  const delivery = { properties: { headers: {} }, fields: {} } as unknown as ConsumeMessage;
  const healed = async (reason: HealReason) => (await metrics.holdsHealed.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  /** A user held by `head` (due back `dueAgoMs` ago) with `later` parked behind it. */
  async function heldUser(dueAgoMs: number, headStatus: MessageStatus | null) {
    const user = `1555820${String(++n).padStart(4, '0')}`;
    const head = message(user);
    const later = message(user);
    await guard.ensureShard(SHARD);
    await guard.hold(head, SHARD, TIERS[0]);
    // Recorded once it is the head: a dead letter from before that is not about this hold.
    if (headStatus) await status.record(head.id, headStatus);
    await redis.hset(keys('hold', 'send', user, 'back'), head.id, String(Date.now() - dueAgoMs));
    return { user, head, later };
  }

  it('keeps waiting for a head that is not due back yet, whatever its record says', async () => {
    const before = await healed('unknown');
    const { head, later } = await heldUser(-60_000, null);
    expect(await guard.mustWait(later, delivery, SHARD))
      .to.have.property('headBackMs')
      .above(Date.now());
    expect(await redis.lindex(keys('hold', 'send', head.user), 0)).to.equal(head.id);
    expect(await healed('unknown')).to.equal(before);
  });

  it('keeps waiting, within the grace, for a head past due whose record says it is on its way', async () => {
    const { head, later } = await heldUser(100, 'dispatched');
    expect(await guard.mustWait(later, delivery, SHARD)).to.not.equal(null);
    expect(await redis.lindex(keys('hold', 'send', head.user), 0)).to.equal(head.id);
  });

  for (const [headStatus, reason] of [
    ['sent', 'sent'],
    ['delivered', 'sent'],
    ['dead-lettered', 'dead-lettered'],
    [null, 'unknown'],
  ] as const) {
    it(`drops a head past due that is ${headStatus ?? 'without a status record'} (${reason})`, async () => {
      const before = await healed(reason);
      const { user, later } = await heldUser(100, headStatus);
      expect(await guard.mustWait(later, delivery, SHARD), 'the later message goes').to.equal(null);
      expect(guard.isHeld(user, SHARD)).to.equal(false);
      expect(await healed(reason)).to.equal(before + 1);
    });
  }

  it('judges a parked message by when its own copy was due back, not by its (older) publish time', async () => {
    const { user, later } = await heldUser(100, 'sent');
    await guard.park(later, delivery, 'send', { apply: async () => {} } as never, SHARD, { headBackMs: Date.now() });
    await redis.hset(keys('hold', 'send', user, 'back'), later.id, String(Date.now()));
    const parkedLongAgo = { properties: { headers: {}, timestamp: Math.floor(Date.now() / 1000) - 60 }, fields: {} } as unknown as ConsumeMessage;
    expect(await guard.mustWait(later, parkedLongAgo, SHARD)).to.equal(null);
  });

  it('keeps waiting for a head that was dead-lettered before it took the head (a replay brought it back)', async () => {
    const { head, later } = await heldUser(100, null);
    await status.record(head.id, 'dead-lettered', { at: Date.now() - 60_000 });
    expect(await guard.mustWait(later, delivery, SHARD)).to.not.equal(null);
    expect(await redis.lindex(keys('hold', 'send', head.user), 0)).to.equal(head.id);
  });

  it('drops as lost a head due back more than the grace before the delivery entered, without asking its record', async () => {
    const before = await healed('lost');
    const { user, head, later } = await heldUser(GRACE_MS + 1000, 'dispatched');
    const parkedToo = message(user);
    await guard.park(parkedToo, delivery, 'send', { apply: async () => {} } as never, SHARD, { headBackMs: Date.now() });
    expect(await guard.mustWait(later, delivery, SHARD), 'waits for the parked one, next in line').to.have.property('headBackMs');
    expect(await redis.lrange(keys('hold', 'send', user), 0, -1)).to.deep.equal([parkedToo.id]);
    expect(await redis.hexists(keys('hold', 'send', user, 'back'), head.id)).to.equal(0);
    expect(await healed('lost')).to.equal(before + 1);
  });

  it('lets a parked message go once the head it waited for is dropped, and the hold ends with it', async () => {
    const { user, later } = await heldUser(GRACE_MS + 1000, null);
    await guard.park(later, delivery, 'send', { apply: async () => {} } as never, SHARD, { headBackMs: Date.now() });
    // Its own copy comes back: its due-back time, not the delivery's, is when it entered.
    await redis.hset(keys('hold', 'send', user, 'back'), later.id, String(Date.now()));
    expect(await guard.mustWait(later, delivery, SHARD)).to.equal(null);
    await guard.done(later, SHARD);
    expect(await redis.exists(keys('hold', 'send', user), keys('hold', 'send', user, 'back'))).to.equal(0);
    expect(await redis.sismember(keys('holds', 'send', SHARD), user)).to.equal(0);
  });

  it('gives every hold a TTL of the longest tier + the grace, and forgets a hold that expired', async () => {
    const before = await healed('expired');
    const { user } = await heldUser(-60_000, null);
    const ttl = await redis.pttl(keys('hold', 'send', user));
    expect(ttl).to.be.within(1, TIERS[1] + GRACE_MS);
    expect(await redis.pttl(keys('hold', 'send', user, 'back'))).to.be.within(1, TIERS[1] + GRACE_MS);
    expect(guard.oldestHoldAgeMs()).to.be.at.least(0);
    const tick = () => (guard as unknown as { tick(): Promise<void> }).tick();
    await waitFor(
      async () => {
        await tick();
        return !guard.isHeld(user, SHARD);
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'the expired hold forgotten' },
    );
    expect(await redis.sismember(keys('holds', 'send', SHARD), user)).to.equal(0);
    expect(await healed('expired')).to.be.at.least(before + 1);
  });
});
