import { expect } from 'chai';
import type { ConsumeMessage } from 'amqplib';
import type { Redis } from 'ioredis';
import { newEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import type { StageMetrics } from '../../shared/stage/metrics.js';
import { DeadLetterHolds } from '../../shared/stage/dead-letter-holds.js';
import { DEAD_BACK } from '../../shared/stage/hold-scripts.js';
import { holdKeys, type HoldKeys } from '../../shared/stage/hold-keys.js';
import { OrderingGuard } from '../../shared/stage/ordering.js';
import { StatusStore } from '../../shared/domain/status.js';
import { holdRuntime, type HoldRuntime } from '../support/hold-runtime.js';
import { waitFor } from '../support/wait.js';

/**
 * DLQ_ORDERING_MODE on the guard itself, against Redis: a dead letter that keeps holding its user,
 * what the heal rules and the TTL do (nothing) about it, and how the replayer's side ends the wait.
 */
describe('ordering: the rules of a hold by a dead letter', function () {
  this.timeout(30_000);
  const GRACE_MS = 300;
  const TIERS = [100, 200];
  const SHARD = 1;
  let h: HoldRuntime;
  let k: HoldKeys;
  let redis: Redis;
  let metrics: StageMetrics;
  let strict: OrderingGuard;
  let release: OrderingGuard;
  let holds: DeadLetterHolds;
  let status: StatusStore;
  let n = 0;

  const guard = (mode: 'strict' | 'release') => new OrderingGuard(h.runtime({ holdGraceMs: GRACE_MS, statusTtlS: 3600, dlqOrderingMode: mode }, TIERS), 'send');

  before(async () => {
    h = holdRuntime('dlq-hold-rules');
    ({ redis, metrics } = h);
    k = holdKeys(h.keys, 'send');
    strict = guard('strict');
    release = guard('release');
    holds = new DeadLetterHolds(redis, h.keys, TIERS[1] + GRACE_MS);
    status = new StatusStore(h.runtime({ statusTtlS: 3600 }, TIERS));
    await strict.ensureShard(SHARD);
    await release.ensureShard(SHARD);
  });
  after(async () => {
    strict.stop();
    release.stop();
    await h.cleanup();
  });

  const message = (user: string): Envelope =>
    newEnvelope({ kind: 'outbound', user, priority: 'normal', payload: { to: user, type: 'text', text: { body: 'x' } } });
  const delivery = { properties: { headers: {} }, fields: {} } as unknown as ConsumeMessage;
  const tick = (g: OrderingGuard) => (g as unknown as { tick(): Promise<void> }).tick();
  const user = () => `1555840${String(++n).padStart(4, '0')}`;

  /** A user whose first message was dead-lettered under strict mode, with `later` behind it. */
  async function deadHead() {
    const u = user();
    const head = message(u);
    const later = message(u);
    await strict.deadLettered(head, SHARD);
    return { u, head, later };
  }

  it('a permanent failure of a user who is not held opens a hold without TTL, its user counted as waiting', async () => {
    const { u, head, later } = await deadHead();
    expect(strict.isHeld(u, SHARD)).to.equal(true);
    expect(await redis.lrange(k.list(u), 0, -1)).to.deep.equal([head.id]);
    expect(await redis.pttl(k.list(u))).to.equal(-1);
    expect(await redis.pttl(k.back(u))).to.equal(-1);
    expect(await redis.zscore(k.waiting, u)).to.not.equal(null);
    expect(strict.heldCount(), 'not counted as held by a retry').to.equal(0);
    const wait = await strict.mustWait(later, delivery, SHARD);
    expect(wait).to.deep.equal({ headBackMs: Number(DEAD_BACK) });
    await strict.park(later, delivery, 'send', { apply: async () => {} } as never, SHARD, wait!);
    expect(await redis.lrange(k.list(u), 0, -1)).to.deep.equal([head.id, later.id]);
    expect(Number(await redis.hget(k.back(u), later.id)), 'parked in the longest tier').to.be.closeTo(Date.now() + TIERS[1], 100);
    expect(await redis.pttl(k.list(u)), 'parking does not bring a TTL back').to.equal(-1);
  });

  it('is never healed: not as lost however late a later delivery, nor as dead-lettered by its record, nor by expiry', async () => {
    const { u, head, later } = await deadHead();
    await status.record(head.id, 'dead-lettered');
    const late = { properties: { headers: {}, timestamp: Math.floor(Date.now() / 1000) + 3600 }, fields: {} } as unknown as ConsumeMessage;
    expect(await strict.mustWait(later, late, SHARD)).to.not.equal(null);
    await tick(strict);
    expect(strict.isHeld(u, SHARD)).to.equal(true);
    expect(await redis.lindex(k.list(u), 0)).to.equal(head.id);
  });

  it('turns a head whose record says dead-lettered (its worker died before saying so in the hold) into a dead-letter wait', async () => {
    const u = user();
    const head = message(u);
    const later = message(u);
    await strict.hold(head, SHARD, TIERS[0]);
    await status.record(head.id, 'dead-lettered');
    await redis.hset(k.back(u), head.id, String(Date.now() - 100));
    expect(await strict.mustWait(later, delivery, SHARD)).to.deep.equal({ headBackMs: Number(DEAD_BACK) });
    expect(await redis.hget(k.back(u), head.id)).to.equal(DEAD_BACK);
    expect(await redis.pttl(k.list(u))).to.equal(-1);
  });

  it('processes the replayed copy as the head, and gives the hold its TTL back', async () => {
    const { u, head, later } = await deadHead();
    await status.record(head.id, 'dead-lettered', { at: Date.now() - 1000 });
    await strict.park(later, delivery, 'send', { apply: async () => {} } as never, SHARD, { headBackMs: Number(DEAD_BACK) });
    expect(await holds.resolve({ stage: 'send', user: u, id: head.id }, 'replayed', Date.now())).to.equal(true);
    expect(await redis.zscore(k.waiting, u)).to.equal(null);
    expect(await redis.pttl(k.list(u))).to.be.within(1, TIERS[1] + GRACE_MS);
    expect(await strict.mustWait(head, delivery, SHARD), 'the replayed copy goes').to.equal(null);
    expect(await strict.mustWait(later, delivery, SHARD), 'the later one still waits for it').to.not.equal(null);
    await strict.done(head, SHARD);
    expect(await strict.mustWait(later, delivery, SHARD)).to.equal(null);
  });

  it('a replay that did not go out leaves the user waiting as before', async () => {
    const { u, head } = await deadHead();
    const at = Date.now();
    await holds.resolve({ stage: 'send', user: u, id: head.id }, 'replayed', at);
    expect(await holds.resolve({ stage: 'send', user: u, id: head.id }, 'kept', at)).to.equal(true);
    expect(await redis.hget(k.back(u), head.id)).to.equal(DEAD_BACK);
    expect(await redis.zscore(k.waiting, u)).to.not.equal(null);
    expect(await redis.pttl(k.list(u))).to.equal(-1);
  });

  it('a purge removes the dead letter: with nothing behind it the hold is gone, and the worker forgets it', async () => {
    const { u, head } = await deadHead();
    expect(await holds.resolve({ stage: 'send', user: u, id: head.id }, 'discarded', Date.now())).to.equal(true);
    expect(await redis.exists(k.list(u), k.back(u))).to.equal(0);
    expect(await redis.sismember(k.shard(SHARD), u)).to.equal(0);
    expect(await redis.zscore(k.waiting, u)).to.equal(null);
    await waitFor(
      async () => {
        await tick(strict);
        return !strict.isHeld(u, SHARD);
      },
      { what: 'the released user forgotten' },
    );
    expect(await holds.resolve({ stage: 'send', user: u, id: head.id }, 'discarded', Date.now()), 'twice: nothing to do').to.equal(false);
  });

  it('in release mode, a dead-letter wait left from strict mode is dropped as dead-lettered', async () => {
    const { u, later } = await deadHead();
    await release.unloadShard(SHARD);
    await release.ensureShard(SHARD);
    const healed = async () => (await metrics.holdsHealed.get()).values.find((v) => v.labels.reason === 'dead-lettered')?.value ?? 0;
    const before = await healed();
    expect(await release.mustWait(later, delivery, SHARD)).to.equal(null);
    expect(await redis.exists(k.list(u))).to.equal(0);
    expect(await healed()).to.equal(before + 1);
  });

  it('reports the waiting users and the oldest wait in the gauges', async () => {
    await redis.zadd(k.waiting, String(Date.now() - 60_000), 'oldest-user');
    await tick(strict);
    const users = (await metrics.dlqWaitingUsers.get()).values.find((v) => v.labels.stage === 'send')?.value;
    const oldest = (await metrics.dlqOldestWait.get()).values.find((v) => v.labels.stage === 'send')?.value;
    expect(users).to.equal(await redis.zcard(k.waiting));
    expect(oldest).to.be.within(59, 65);
  });
});
