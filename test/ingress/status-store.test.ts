import { expect } from 'chai';
import { Redis } from 'ioredis';
import { newId } from '../../shared/domain/envelope.js';
import { keyspace } from '../../shared/platform/redis.js';
import { StatusStore } from '../../shared/domain/status.js';
import { isolate, REDIS_URL, type Isolation } from '../support/isolation.js';

/** What `work` returns, and how many scripts this client sent meanwhile (ioredis `monitor` is too broad). */
async function commandsDuring<T>(redis: Redis, work: () => Promise<T>): Promise<{ result: T; evals: number }> {
  let evals = 0;
  const original = redis.sendCommand.bind(redis);
  redis.sendCommand = ((cmd: { name: string }) => {
    if (cmd.name === 'evalsha' || cmd.name === 'eval') evals++;
    return original(cmd as never);
  }) as typeof redis.sendCommand;
  try {
    return { result: await work(), evals };
  } finally {
    redis.sendCommand = original;
  }
}

describe('status store: forward-only message status records', function () {
  let iso: Isolation;
  let redis: Redis;
  let store: StatusStore;

  before(async () => {
    iso = await isolate('status');
    const cfg = iso.config();
    redis = new Redis(REDIS_URL);
    store = new StatusStore({ redis, cfg, keys: keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix) });
  });
  after(async () => {
    redis?.disconnect();
    await iso?.cleanup();
  });

  it('records the path of a message with the time of each status', async () => {
    const id = newId();
    for (const s of ['accepted', 'dispatched', 'sent', 'delivered', 'read'] as const) {
      expect(await store.record(id, s, { at: 1_700_000_000_000 })).to.equal('moved');
    }
    const rec = await store.get(id);
    expect(rec!.status).to.equal('read');
    expect(rec!.history.map((h) => h.status)).to.deep.equal(['accepted', 'dispatched', 'sent', 'delivered', 'read']);
    expect(rec!.history[0].at).to.equal('2023-11-14T22:13:20.000Z');
  });

  it('records the moves of one turn together, each with its own answer, in the order they were made', async () => {
    const ids = Array.from({ length: 300 }, () => newId()); // more than one batch (256)
    await store.record(ids[0], 'delivered');
    const calls = commandsDuring(redis, () =>
      Promise.all([
        ...ids.map((id) => store.record(id, 'accepted')),
        store.record(ids[1], 'sent', { wamid: 'wamid.B1' }), // after its `accepted` of the same turn
        store.record(newId(), 'delivered', { mustExist: true }),
      ]),
    );
    const { result, evals } = await calls;
    expect(result[0]).to.equal('stale');
    expect(result.slice(1, ids.length)).to.deep.equal(new Array(ids.length - 1).fill('moved'));
    expect(result.slice(ids.length)).to.deep.equal(['moved', 'missing']);
    expect(evals, 'script calls for 302 records (256 a batch)').to.be.within(2, 3);
    expect((await store.get(ids[1]))!.history.map((h) => h.status)).to.deep.equal(['accepted', 'sent']);
    expect(await store.idForWamid('wamid.B1')).to.equal(ids[1]);
  });

  it('ignores a late sent after delivered, and a second dispatched', async () => {
    const id = newId();
    await store.record(id, 'dispatched');
    await store.record(id, 'delivered');
    expect(await store.record(id, 'sent', { wamid: 'wamid.X1' })).to.equal('stale');
    expect(await store.record(id, 'dispatched')).to.equal('stale');
    const rec = await store.get(id);
    expect(rec!.status).to.equal('delivered');
    expect(rec!.history.map((h) => h.status)).to.deep.equal(['dispatched', 'delivered']);
    // The wamid of the stale status still lands: a webhook that overtook the sender finds its way.
    expect(rec!.wamid).to.equal('wamid.X1');
    expect(await store.idForWamid('wamid.X1')).to.equal(id);
  });

  it('keeps failed and dead-lettered final, except that a replayed dead letter moves on again', async () => {
    const failed = newId();
    await store.record(failed, 'sent');
    await store.record(failed, 'failed', { error: { code: '131047', message: 'Re-engagement message' } });
    expect(await store.record(failed, 'delivered')).to.equal('stale');
    expect((await store.get(failed))!.error).to.deep.equal({ code: '131047', message: 'Re-engagement message' });

    const dead = newId();
    await store.record(dead, 'dispatched');
    await store.record(dead, 'dead-lettered', { error: { code: '131026', message: 'undeliverable', class: 'permanent' } });
    expect(await store.record(dead, 'accepted')).to.equal('stale');
    expect(await store.record(dead, 'sent')).to.equal('moved');
    const rec = await store.get(dead);
    expect(rec!.status).to.equal('sent');
    expect(rec).not.to.have.property('error');
    expect(rec!.history.map((h) => h.status)).to.deep.equal(['dispatched', 'dead-lettered', 'sent']);
  });

  it('updates only existing records when told to, and forgets records', async () => {
    const id = newId();
    expect(await store.record(id, 'delivered', { mustExist: true })).to.equal('missing');
    expect(await store.get(id)).to.equal(null);
    await store.record(id, 'accepted');
    await store.forget(id);
    expect(await store.get(id)).to.equal(null);
  });

  it('resolves a status webhook by biz_opaque_callback_data, else by wamid', async () => {
    const id = newId();
    await store.record(id, 'sent', { wamid: 'wamid.R1' });
    expect(await store.resolve(id, 'wamid.other')).to.equal(id);
    expect(await store.resolve('01JDEXAMPLEENVELOPEID0000', 'wamid.R1')).to.equal(id);
    expect(await store.resolve(undefined, 'wamid.none')).to.equal(null);
  });

  it('expires records after STATUS_TTL_S, longer for a message scheduled further out', async () => {
    const cfg = iso.config();
    const id = newId();
    await store.record(id, 'accepted');
    const key = keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix)('status', id);
    expect(await redis.ttl(key)).to.be.within(cfg.statusTtlS - 5, cfg.statusTtlS);
    await store.record(id, 'scheduled', { ttlS: cfg.statusTtlS + 86_400 });
    await store.record(id, 'dispatched');
    expect(await redis.ttl(key)).to.be.greaterThan(cfg.statusTtlS);
  });

  it('caps the history of a message that is replayed over and over', async () => {
    const id = newId();
    for (let i = 0; i < 40; i++) {
      await store.record(id, 'dead-lettered');
      await store.record(id, 'dispatched');
    }
    const rec = await store.get(id);
    expect(rec!.status).to.equal('dispatched');
    expect(rec!.history.length).to.equal(50);
  });
});
