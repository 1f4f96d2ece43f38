import { expect } from 'chai';
import fc from 'fast-check';
import amqplib from 'amqplib';
import { jumpHash, parseShardKey, shardKey, shardOf } from '../../shared/amqp/topology/shard.js';
import { buildTopology } from '../../shared/amqp/topology/declaration.js';
import { assertTopology } from '../../shared/amqp/topology/assert.js';
import { routingKeyFor } from '../../shared/amqp/publish.js';
import { isolate, MGMT_URL, queueDepths, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

describe('publisher-side sharding (jump consistent hash)', () => {
  it('matches the published jump hash vectors (other languages compute the same shard)', () => {
    // Vectors of the reference implementations (rust jump-consistent-hash, python jump, ClickHouse).
    expect(jumpHash(256n, 1024)).to.equal(520);
    expect(jumpHash(0n, 60)).to.equal(0);
    expect(jumpHash(1n, 60)).to.equal(55);
    expect(jumpHash(2n, 60)).to.equal(46);
    expect(jumpHash(42n, 57)).to.equal(43);
    expect(jumpHash(0xdead10ccn, 666)).to.equal(361);
  });

  it('spreads users evenly over the shards', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 64_000; i++) counts[shardOf(`4917${String(i).padStart(8, '0')}`, 16)]++;
    for (const c of counts) expect(c).to.be.within(4000 * 0.9, 4000 * 1.1);
  });

  it('moves only the users of the new shard when SHARDS grows by one, and is the same on every call', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.integer({ min: 1, max: 200 }), (user, n) => {
        const before = shardOf(user, n);
        expect(before).to.be.within(0, n - 1);
        expect(shardOf(user, n)).to.equal(before);
        const after = shardOf(user, n + 1);
        expect(after === before || after === n, `${JSON.stringify(user)}: ${before} → ${after} of ${n + 1}`).to.equal(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('tells a shard key from a user (a dead letter of before the change carries the user)', () => {
    expect(shardKey(7)).to.equal('07');
    expect(shardKey(123)).to.equal('123');
    expect(parseShardKey('07', 16)).to.equal(7);
    expect(parseShardKey('15', 16)).to.equal(15);
    expect(parseShardKey('16', 16)).to.equal(null);
    expect(parseShardKey('7', 16)).to.equal(null);
    expect(parseShardKey('15551234567', 16)).to.equal(null);
    expect(parseShardKey('', 16)).to.equal(null);
  });

  describe('on the broker', function () {
    let iso: Isolation;
    const topology = buildTopology({ prefix: 'sh', shards: 8, retryTiersMs: [1000], urgentQueueType: 'classic', deliveryLimit: 3 });

    before(async () => {
      iso = await isolate('shard');
      const conn = await amqplib.connect(iso.amqpUrl);
      try {
        await assertTopology(conn, topology, { mode: 'assert', managementUrl: MGMT_URL, vhost: iso.vhost });
      } finally {
        await conn.close();
      }
    });
    after(async () => iso.cleanup());

    it('routes each user to the shard queue the publisher computed, through the durable bindings only', async () => {
      const users = Array.from({ length: 200 }, (_, i) => `3361${String(i).padStart(8, '0')}`);
      const expected = new Array<number>(8).fill(0);
      const conn = await amqplib.connect(iso.amqpUrl);
      try {
        const ch = await conn.createConfirmChannel();
        for (const u of users) {
          expected[shardOf(u, 8)]++;
          ch.publish(topology.names.laneExchange('send'), routingKeyFor(topology, 'send', u), Buffer.from(u), { mandatory: true });
        }
        await ch.waitForConfirms();
        const queues = Array.from({ length: 8 }, (_, i) => topology.names.shardQueue('send', i));
        await waitFor(async () => Object.values(await queueDepths(iso.amqpUrl, queues)).reduce((a, b) => a + b, 0) === users.length, {
          what: 'every message in a shard',
        });
        const depths = await queueDepths(iso.amqpUrl, queues);
        expect(queues.map((q) => depths[q])).to.deep.equal(expected);
        // And the queue holds exactly the users computed for it.
        const got: string[] = [];
        await ch.consume(queues[3], (m) => m && got.push(m.content.toString()), { noAck: true });
        await waitFor(() => got.length === expected[3], { what: `the ${expected[3]} messages of shard 03` });
        expect(got).to.deep.equal(users.filter((u) => shardOf(u, 8) === 3));
      } finally {
        await conn.close();
      }
    });
  });
});
