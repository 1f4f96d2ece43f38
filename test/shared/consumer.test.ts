import { expect } from 'chai';
import amqplib from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import { Broker } from '../../shared/amqp/broker.js';
import { QueueConsumer } from '../../shared/stage/consumer.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { queueDepths } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { useIsolation } from '../support/use-fleet.js';

/**
 * QueueConsumer against the real broker, through the failures that stalled shards in the chaos
 * runs: a connection lost with a backlog larger than the prefetch (acks of the new channel's first
 * deliveries were dropped as stale, leaving the prefetch full of unacked messages for good), and a
 * subscription the broker refuses while the connection stays up (a classic queue whose node is down).
 * And the stop a shard hand-over needs when another consumer may be waiting on the queue.
 */
describe('shared/consumer: QueueConsumer across a reconnect, a refused subscription and a hand-over', function () {
  this.timeout(90_000);
  let broker: Broker;
  const NAME = `consumer-test-${process.pid}`;

  const t = useIsolation('consumer');
  before(async () => {
    broker = new Broker({ urls: t.iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 5000, name: NAME });
    t.defer('close the broker', () => broker.close());
    await broker.waitForConnect(10_000);
  });

  async function declareAndFill(queue: string, n: number, args: Record<string, unknown> = {}): Promise<string[]> {
    const conn = await amqplib.connect(t.iso.amqpUrl);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum', ...args } });
    const ids = Array.from({ length: n }, (_, i) => `m-${String(i).padStart(4, '0')}`);
    for (const id of ids) ch.sendToQueue(queue, Buffer.from(id), { persistent: true, messageId: id });
    await ch.waitForConfirms();
    await conn.close();
    return ids;
  }

  /** Ready + unacked, straight from the broker (a passive declare counts only ready ones). */
  async function left(queue: string): Promise<{ ready: number; unacked: number }> {
    const q = await t.iso.mgmt.queue(t.iso.vhost, queue);
    return { ready: q.messages_ready ?? 0, unacked: q.messages_unacknowledged ?? 0 };
  }

  it('acks every delivery after its connection is closed under a backlog larger than the prefetch', async () => {
    const queue = 'backlog';
    const ids = await declareAndFill(queue, 300);
    const handled = new Map<string, number>();
    const consumer = new QueueConsumer(broker, {
      queue,
      prefetch: 16,
      logger: silentLogger(),
      handler: async (msg) => {
        await sleep(5);
        const id = msg.properties.messageId as string;
        handled.set(id, (handled.get(id) ?? 0) + 1);
      },
    });
    await consumer.start();
    await waitFor(() => handled.size >= 40, { timeoutMs: 20_000, what: 'the first 40 messages' });

    // Close the consumer's connection from the broker's side, as a node restart or a network cut would.
    // (The management API lists a new connection after its next stats emission: wait for it.)
    const mine = await waitFor(
      async () => {
        const conns = await t.iso.mgmt.call<Array<{ name: string; client_properties?: { connection_name?: string } }>>(
          'GET',
          `/api/vhosts/${encodeURIComponent(t.iso.vhost)}/connections`,
        );
        const found = conns.filter((c) => c.client_properties?.connection_name === `${NAME}@${broker.replica}`);
        return found.length ? found : null;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'the broker to list our connection' },
    );
    expect(mine, 'one connection of ours').to.have.length(1);
    await t.iso.mgmt.call('DELETE', `/api/connections/${encodeURIComponent(mine[0].name)}`);
    await waitFor(() => !broker.connected(), { timeoutMs: 10_000, what: 'the connection to drop' });
    await waitFor(() => broker.connected(), { timeoutMs: 20_000, what: 'the reconnect' });

    await waitFor(() => ids.every((id) => handled.has(id)), { timeoutMs: 40_000, what: 'every message handled' });
    // Every delivery of the new channel was acked: nothing stays unacked on it (the management
    // API's counters lag by a few seconds, hence the wait).
    const end = await waitFor(
      async () => {
        const l = await left(queue);
        return l.ready === 0 && l.unacked === 0 ? l : null;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'the queue to be empty with nothing unacked' },
    );
    expect(end).to.deep.equal({ ready: 0, unacked: 0 });
    await consumer.stop(5000);
  });

  it('subscribes again by itself when the broker refuses the subscription while the connection stays up', async () => {
    const queue = 'not-yet';
    const handled: string[] = [];
    const consumer = new QueueConsumer(broker, {
      queue,
      prefetch: 4,
      logger: silentLogger(),
      reviveAfterMs: 300,
      handler: async (msg) => {
        handled.push(msg.properties.messageId as string);
      },
    });
    // The broker answers basic.consume with 404 and closes the channel (start() may or may not see
    // it: amqp-connection-manager subscribes in the background when the channel is still opening).
    await consumer.start().catch(() => {});
    await waitFor(() => consumer.revivedCount > 0, { timeoutMs: 10_000, what: 'the consumer to subscribe again' });
    expect(broker.connected(), 'a channel error leaves the connection up').to.equal(true);

    const ids = await declareAndFill(queue, 3);
    await waitFor(() => handled.length === 3, { timeoutMs: 20_000, what: 'the messages of the queue declared later' });
    expect(handled).to.deep.equal(ids);
    await consumer.stop(5000);
    expect(consumer.subscribed()).to.equal(false);
  });

  /**
   * A shard queue has single active consumer on: the first subscriber is active, later ones wait.
   * `old` holds five deliveries (prefetch 5), each taking HOLD_MS; `next` subscribes; then `old`
   * stops. Returns the order the messages were handled in, and whether `next` saw a message
   * before `old` had settled all of its own.
   */
  async function handOver(queue: string, cancel: boolean): Promise<{ ids: string[]; handled: string[]; nextBeforeOldDone: boolean; withheldAgain: number }> {
    const HOLD_MS = 150;
    const ids = await declareAndFill(queue, 30, { 'x-single-active-consumer': true });
    const handled: string[] = [];
    const seen = new Map<string, number>();
    let oldSettled = 0;
    let oldHandedOut = 0;
    let nextBeforeOldDone = false;
    const old = new QueueConsumer(broker, {
      queue,
      prefetch: 5,
      logger: silentLogger(),
      handler: async (msg) => {
        oldHandedOut++;
        const id = msg.properties.messageId as string;
        await sleep(HOLD_MS); // one at a time would be the shards' per-user chain; these run side by side
        handled.push(id);
        oldSettled++;
      },
    });
    const next = new QueueConsumer(broker, {
      queue,
      prefetch: 5,
      logger: silentLogger(),
      handler: async (msg) => {
        const id = msg.properties.messageId as string;
        seen.set(id, Number(msg.properties.headers?.['x-delivery-count'] ?? 0));
        if (oldSettled < oldHandedOut) nextBeforeOldDone = true;
        handled.push(id);
      },
    });
    await old.start();
    await waitFor(() => oldHandedOut === 5, { timeoutMs: 10_000, what: 'five deliveries in the first consumer' });
    await next.start(); // resolves on consume-ok: the quorum queue has registered it, waiting
    await old.stop(10_000, { cancel });
    await waitFor(() => handled.length >= ids.length, { timeoutMs: 20_000, what: 'every message handled' });
    await next.stop(5000);
    // Deliveries the first consumer received after its stop began and gave back unhandled.
    const withheldAgain = [...seen.values()].filter((n) => n > 0).length;
    return { ids, handled, nextBeforeOldDone, withheldAgain };
  }

  it('a stop without cancel keeps a waiting single-active consumer idle until every delivery in hand is settled', async () => {
    const r = await handOver('sac-keep', false);
    expect(r.nextBeforeOldDone, 'the next consumer got a message while the first still worked').to.equal(false);
    expect(r.handled, 'every message once, in queue order').to.deep.equal(r.ids);
    // The first consumer's refills after the stop go back to the head, in order, counted as a delivery.
    expect(r.withheldAgain).to.be.at.most(5);
  });

  it('(why) a cancel hands a single-active queue to the waiting consumer at once, with deliveries still unacked', async () => {
    const r = await handOver('sac-cancel', true);
    expect(r.nextBeforeOldDone, 'RabbitMQ activates the waiting consumer on basic.cancel').to.equal(true);
  });

  it('a stop past its grace period resolves only once the handlers still running have returned', async () => {
    const queue = 'outlives-grace';
    await declareAndFill(queue, 1);
    let started = false;
    let returned = false;
    const consumer = new QueueConsumer(broker, {
      queue,
      prefetch: 1,
      logger: silentLogger(),
      handler: async () => {
        started = true;
        await sleep(800); // a provider call that outlives the grace period
        returned = true;
      },
    });
    await consumer.start();
    await waitFor(() => started, { timeoutMs: 10_000, what: 'the delivery in the handler' });
    await consumer.stop(100);
    expect(returned, 'the handler had returned when stop() resolved').to.equal(true);
    expect(consumer.inFlightCount).to.equal(0);
    expect(await queueDepths(t.iso.amqpUrl, [queue]), 'the unsettled delivery went back to the queue').to.deep.equal({ [queue]: 1 });
  });

  it('acks a run of finished deliveries in one frame, and one still at work does not hold the prefetch window', async () => {
    const queue = 'ack-runs';
    const ids = await declareAndFill(queue, 200);
    const handled = new Map<string, number>();
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((r) => (releaseFirst = r));
    let releaseWave!: () => void;
    const wave = new Promise<void>((r) => (releaseWave = r));
    const consumer = new QueueConsumer(broker, {
      queue,
      prefetch: 16,
      logger: silentLogger(),
      handler: async (msg) => {
        const id = msg.properties.messageId as string;
        if (id === ids[0])
          await firstHeld; // a slow provider call at the head of the window
        else if (id < ids[100])
          await sleep(Math.random() * 4); // finish out of order
        else await wave; // the second half: 16 at a time, all finishing in one turn
        handled.set(id, (handled.get(id) ?? 0) + 1);
      },
    });
    await consumer.start();
    // Had the finished ones waited for the first, the window would hold 15 of them and no more.
    await waitFor(() => handled.size >= 99, { timeoutMs: 20_000, what: '99 messages past the held one' });
    expect(handled.has(ids[0]), 'the first is still held').to.equal(false);
    releaseFirst();
    await waitFor(() => handled.size >= 100, { timeoutMs: 10_000, what: 'the held one' });
    // Wait until the second half fills the window, then let each window finish at once.
    await waitFor(() => consumer.inFlightCount === 16, { timeoutMs: 10_000, what: 'a full window of the second half' });
    const before = consumer.settleCounts;
    releaseWave();
    await waitFor(
      async () => {
        const q = await left(queue);
        return handled.size === ids.length && q.ready + q.unacked === 0;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'every message handled and acked' },
    );
    const after = consumer.settleCounts;
    await consumer.stop(1000);
    expect(
      [...handled.values()].every((n) => n === 1),
      'each handled once (no ack was lost to a redelivery)',
    ).to.equal(true);
    expect(after.deliveries, 'every delivery settled').to.equal(ids.length);
    // 100 messages finishing a window (16) at a time: a few frames per window, not one per message.
    expect(after.frames - before.frames, 'frames for the second half').to.be.at.most(50);
  });
});
