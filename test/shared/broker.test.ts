import { expect } from 'chai';
import amqplib from 'amqplib';
import net, { type Socket } from 'node:net';
import { batchFrameWrites, Broker } from '../../shared/amqp/broker.js';
import { QueueConsumer } from '../../shared/stage/consumer.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { waitFor } from '../support/wait.js';
import { useIsolation } from '../support/use-fleet.js';

/**
 * The broker connection batches the frames of one pass of amqplib's multiplexer into one socket
 * write: counted at the socket (its `_write`/`_writev` calls), with the broker's confirms and the
 * queue's contents checked through raw amqplib.
 */
describe('shared/broker: frame writes batched per multiplexer pass', function () {
  this.timeout(60_000);
  let broker: Broker;

  const t = useIsolation('broker-writes');
  before(async () => {
    broker = new Broker({ urls: t.iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 10_000 });
    t.defer('close the broker', () => broker.close());
    await broker.waitForConnect(10_000);
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
    const conn = await amqplib.connect(t.iso.amqpUrl);
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
 * unacknowledged then waits for the broker's delayed ACK (tens of ms per hop at a low rate;
 * docs/ARCHITECTURE.md, "Broker connection"). The project's connections must turn it off.
 */
describe('shared/broker: TCP_NODELAY on the connection', function () {
  this.timeout(30_000);

  const t = useIsolation('broker-nodelay');

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
      broker = new Broker({ urls: t.iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 10_000 });
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

/**
 * The urgent lanes ride a connection of their own (BrokerOptions.urgentConnection), so an urgent
 * delivery or publish is never a frame behind the ordered lanes' traffic in one TCP stream. Checked
 * from the broker's side: the management API's connections and channels, and a main connection
 * closed by the broker while urgent work goes on.
 */
describe('shared/broker: the urgent lanes on a connection of their own', function () {
  this.timeout(60_000);
  const NAME = 'pmtest-urgent-conn';
  let broker: Broker;

  const t = useIsolation('broker-urgent-conn');
  before(async () => {
    broker = new Broker({ urls: t.iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 10_000, name: NAME, urgentConnection: true });
    t.defer('close the broker', () => broker.close());
    await broker.waitForConnect(10_000);
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const ch = await conn.createChannel();
    for (const q of ['lane.urgent', 'lane.ordered']) await ch.assertQueue(q, { durable: true });
    await conn.close();
  });

  type Conn = { name: string; channels?: number; client_properties?: { connection_name?: string } };
  /** Our connections by their connection_name, once the management API lists both (its stats lag). */
  async function ours(): Promise<Map<string, Conn>> {
    return waitFor(
      async () => {
        const conns = await t.iso.mgmt.call<Conn[]>('GET', `/api/vhosts/${encodeURIComponent(t.iso.vhost)}/connections`);
        // Named `<name>@<replica>`: keyed here by the part before the replica.
        const byName = new Map(conns.map((c) => [(c.client_properties?.connection_name ?? '').replace(`@${broker.replica}`, ''), c]));
        return byName.has(NAME) && byName.has(`${NAME}:urgent`) ? byName : null;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'both connections in the management API' },
    );
  }

  it('publishes and consumes urgent work on `<name>:urgent`, ordered work on `<name>`', async () => {
    const got: string[] = [];
    const consumer = new QueueConsumer(broker, {
      queue: 'lane.urgent',
      prefetch: 4,
      urgent: true,
      logger: silentLogger(),
      handler: async (m) => void got.push(m.content.toString()),
    });
    await consumer.start();
    await broker.publish({ exchange: '', routingKey: 'lane.urgent', body: Buffer.from('u1'), messageId: 'u1', urgent: true });
    await broker.publish({ exchange: '', routingKey: 'lane.ordered', body: Buffer.from('o1'), messageId: 'o1' });
    await waitFor(() => got.includes('u1'), { what: 'the urgent message consumed' });
    // Urgent: the consumer's channel and the urgent publisher; main: the ordered publisher only.
    const conns = await waitFor(
      async () => {
        const c = await ours();
        return c.get(`${NAME}:urgent`)?.channels === 2 && c.get(NAME)?.channels === 1 ? c : null;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'two channels on the urgent connection, one on the main one' },
    );
    expect(conns.get(`${NAME}:urgent`)?.channels).to.equal(2);
    await consumer.stop(5000);
  });

  it('goes on with urgent work while the broker has closed the main connection', async () => {
    const got: string[] = [];
    const consumer = new QueueConsumer(broker, {
      queue: 'lane.urgent',
      prefetch: 4,
      urgent: true,
      logger: silentLogger(),
      handler: async (m) => void got.push(m.content.toString()),
    });
    await consumer.start();
    const main = (await ours()).get(NAME) as Conn;
    // Kill the main connection, and check the urgent lane before the main one is back.
    const dropped = new Promise<void>((resolve) => broker.manager.once('disconnect', () => resolve()));
    await t.iso.mgmt.call('DELETE', `/api/connections/${encodeURIComponent(main.name)}`);
    await dropped;
    // Both publishes start in the same tick, while the main connection is known to be down (it
    // reconnects after a second): the urgent one goes out, the ordered one is refused at once.
    const publish = broker.publish({ exchange: '', routingKey: 'lane.urgent', body: Buffer.from('u2'), messageId: 'u2', urgent: true });
    const refused = broker.publish({ exchange: '', routingKey: 'lane.ordered', body: Buffer.from('o2'), messageId: 'o2' }).then(
      () => null,
      (e: unknown) => e,
    );
    const urgentWhileDown = !broker.connected() && broker.connected(true);
    await publish;
    await waitFor(() => got.includes('u2'), { what: 'the urgent message consumed' });
    expect(urgentWhileDown, 'the main connection was still down (the urgent one up) when the urgent publish went out').to.equal(true);
    expect(((await refused) as Error | null)?.name, 'the ordered publish on the closed main connection').to.equal('BrokerUnavailableError');
    await consumer.stop(5000);
  });
});
