import { expect } from 'chai';
import amqplib from 'amqplib';
import net, { type Socket } from 'node:net';
import { batchFrameWrites, Broker } from '../../shared/broker.js';
import { silentLogger } from '../../shared/logger.js';
import { isolate, type Isolation } from '../support/isolation.js';

/**
 * The broker connection batches the frames of one pass of amqplib's multiplexer into one socket
 * write: counted at the socket (its `_write`/`_writev` calls), with the broker's confirms and the
 * queue's contents checked through raw amqplib.
 */
describe('shared/broker: frame writes batched per multiplexer pass', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let broker: Broker;

  before(async () => {
    iso = await isolate('broker-writes');
    broker = new Broker({ urls: iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 10_000 });
    await broker.waitForConnect(10_000);
  });
  after(async () => {
    await broker?.close();
    await iso?.cleanup();
  });

  /** Counts the socket's low-level writes while `work` runs. */
  async function socketWrites(work: () => Promise<void>): Promise<number> {
    const socket = (broker.connection() as unknown as { connection: { stream: Socket } }).connection.stream;
    const s = socket as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
    const orig = { write: s._write, writev: s._writev };
    let n = 0;
    s._write = function (...a: unknown[]) {
      n++;
      return orig.write.apply(this, a);
    };
    s._writev = function (...a: unknown[]) {
      n++;
      return orig.writev.apply(this, a);
    };
    try {
      await work();
    } finally {
      s._write = orig.write;
      s._writev = orig.writev;
    }
    return n;
  }

  it('is in place on the live connection, once', () => {
    expect(batchFrameWrites(broker.connection()), 'a second call must not wrap the pass again').to.equal(false);
  });

  it('publishes 200 messages of one tick in a handful of socket writes, every one confirmed and queued', async () => {
    const queue = 'batched';
    const conn = await amqplib.connect(iso.amqpUrl);
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      // Open the publisher channel first, so that only the publishes are counted.
      await broker.publish({ exchange: '', routingKey: queue, body: Buffer.from('warm-up'), messageId: 'warm-up' });
      const n = 200;
      const writes = await socketWrites(async () => {
        await Promise.all(
          Array.from({ length: n }, (_, i) => broker.publish({ exchange: '', routingKey: queue, body: Buffer.from(`m-${i}`), messageId: `m-${i}` })),
        );
      });
      // Unbatched, each publish is its own write (200+); batched, a pass writes up to the socket's
      // high-water mark (16 KiB, ~80 of these publishes) at once.
      expect(writes, 'socket writes for 200 publishes').to.be.at.most(20);
      const { messageCount } = await ch.checkQueue(queue);
      expect(messageCount).to.equal(n + 1);
    } finally {
      await conn.close();
    }
  });
});

/**
 * amqplib leaves Nagle's algorithm on unless told: a small frame written while an earlier one is
 * unacknowledged then waits for the broker's delayed ACK (~20–40 ms per hop at a low rate;
 * docs/BENCHMARKS.md). The project's connections must turn it off.
 */
describe('shared/broker: TCP_NODELAY on the connection', function () {
  this.timeout(30_000);
  let iso: Isolation;

  before(async () => {
    iso = await isolate('broker-nodelay');
  });
  after(() => iso?.cleanup());

  it('sets noDelay on its connection socket (reconnects use the same options)', async () => {
    const calls: Array<{ socket: Socket; on: boolean }> = [];
    const proto = net.Socket.prototype as unknown as { setNoDelay: (on?: boolean) => Socket };
    const orig = proto.setNoDelay;
    proto.setNoDelay = function (this: Socket, on?: boolean) {
      calls.push({ socket: this, on: on !== false });
      return orig.call(this, on);
    };
    let broker: Broker | undefined;
    try {
      broker = new Broker({ urls: iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 10_000 });
      await broker.waitForConnect(10_000);
      const socket = (broker.connection() as unknown as { connection: { stream: Socket } }).connection.stream;
      const mine = calls.filter((c) => c.socket === socket);
      expect(mine.length, 'setNoDelay called on the broker socket').to.be.at.least(1);
      expect(mine[mine.length - 1].on, 'the last call turns Nagle off').to.equal(true);
    } finally {
      proto.setNoDelay = orig;
      await broker?.close();
    }
  });
});
