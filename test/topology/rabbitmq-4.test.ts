import { expect } from 'chai';
import amqplib, { type ChannelModel } from 'amqplib';
import { assertTopology } from '../../shared/amqp/topology/assert.js';
import { buildTopology, DLQ_DELIVERY_LIMIT } from '../../shared/amqp/topology/declaration.js';
import { readQueue } from '../../services/dlq-replayer/reader.js';
import { isolate, MGMT_URL, queueDepths, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { publishDeadLetters } from '../dlq/helpers.js';
import { Broker } from '../../shared/amqp/broker.js';
import { newEnvelope } from '../../shared/domain/envelope.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { Metrics } from '../../shared/platform/metrics.js';
import { DEFAULT_URGENCY, publishToStage } from '../../shared/amqp/publish.js';
import { shardOf } from '../../shared/amqp/topology/shard.js';

/** RabbitMQ 4.x's delivery limit of a quorum queue that has none of its own. */
const RABBITMQ_4_DEFAULT_DELIVERY_LIMIT = 20;

/**
 * What RabbitMQ 4.x changes for quorum queues, checked on the 3.x broker the tests run on: the DLQ,
 * which the CLI reads by taking every message and giving it back, must not meet 4.x's default
 * delivery limit (docs/OPERATIONS.md "RabbitMQ 4.x").
 */
describe('topology: the same on RabbitMQ 3.x and 4.x', function () {
  let iso: Isolation;
  let conn: ChannelModel;
  const topology = buildTopology({ prefix: 'r4', shards: 2, retryTiersMs: [1000], urgentQueueType: 'classic', deliveryLimit: 3 });
  const dlq = topology.names.dlq;

  const readIds = async (): Promise<string[]> => {
    const ids: string[] = [];
    await readQueue(conn, dlq, (m) => void ids.push(String(m.properties.messageId)), { idleMs: 2000 });
    return ids;
  };

  before(async () => {
    iso = await isolate('rabbitmq-4');
    conn = await amqplib.connect(iso.amqpUrl);
    await assertTopology(conn, topology, { mode: 'assert', managementUrl: MGMT_URL, vhost: iso.vhost });
  });
  after(async () => {
    await conn?.close().catch(() => {});
    await iso?.cleanup();
  });

  it('gives every quorum queue that consumers hand messages back to an explicit delivery limit', async () => {
    const quorum = topology.queues.filter((q) => q.arguments['x-queue-type'] === 'quorum' && !/\.retry\./.test(q.name));
    for (const q of quorum) {
      // Policies apply to existing queues asynchronously.
      await waitFor(async () => (await iso.mgmt.queue(iso.vhost, q.name)).effective_policy_definition?.['delivery-limit'] !== undefined, {
        what: `an explicit delivery-limit on ${q.name}`,
      });
    }
    const d = await iso.mgmt.queue(iso.vhost, dlq);
    expect(d.policy).to.equal('r4.dlq');
    expect(d.effective_policy_definition).to.deep.equal({ 'delivery-limit': DLQ_DELIVERY_LIMIT });
  });

  it(`reads the DLQ more often than ${RABBITMQ_4_DEFAULT_DELIVERY_LIMIT} times without losing or reordering a dead letter`, async () => {
    const dead = await publishDeadLetters(iso.amqpUrl, 'r4', [{ user: '15550000001' }, { user: '15550000002' }, { user: '15550000003' }]);
    const want = dead.map((d) => d.id);
    await waitFor(async () => (await queueDepths(iso.amqpUrl, [dlq]))[dlq] === 3, { what: '3 dead letters' });
    for (let i = 0; i < RABBITMQ_4_DEFAULT_DELIVERY_LIMIT + 5; i++) expect(await readIds(), `read ${i + 1}`).to.deep.equal(want);
    expect((await queueDepths(iso.amqpUrl, [dlq]))[dlq]).to.equal(3);
  });

  it(`would lose them all under ${RABBITMQ_4_DEFAULT_DELIVERY_LIMIT}, the limit 4.x gives a quorum queue without one (emulated by a policy)`, async () => {
    await iso.mgmt.call('PUT', `/api/policies/${encodeURIComponent(iso.vhost)}/emulated-4x-default`, {
      pattern: `^${dlq.replace(/\./g, '\\.')}$`,
      'apply-to': 'queues',
      priority: 99,
      definition: { 'delivery-limit': RABBITMQ_4_DEFAULT_DELIVERY_LIMIT },
    });
    await waitFor(async () => (await iso.mgmt.queue(iso.vhost, dlq)).policy === 'emulated-4x-default', { what: 'the emulated default on the DLQ' });
    // The reads above counted 25 deliveries per message: the next give-back is past the limit, and a
    // DLQ has nowhere to dead-letter to.
    await readIds();
    await waitFor(async () => (await queueDepths(iso.amqpUrl, [dlq]))[dlq] === 0, { what: 'the DLQ emptied by the delivery limit' });
  });

  it('publishes no priority onto an ordered lane: on 4.x a quorum shard would let priority 5 and up overtake', async () => {
    const broker = new Broker({ urls: iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 5000, name: 'rabbitmq-4-test' });
    const user = '15550000009';
    try {
      await broker.waitForConnect(10_000);
      const p = { broker, topology, metrics: new Metrics('rabbitmq-4-test') };
      for (const priority of ['normal', 'urgent'] as const) {
        await publishToStage(p, 'send', newEnvelope({ kind: 'outbound', user, priority, payload: { type: 'text', text: { body: priority } } }));
      }
    } finally {
      await broker.close();
    }
    const priorities = async (queue: string) => {
      const seen: unknown[] = [];
      await readQueue(conn, queue, (m) => void seen.push(m.properties.priority), { idleMs: 2000 });
      return seen;
    };
    expect(await priorities(topology.names.shardQueue('send', shardOf(user, topology.options.shards)))).to.deep.equal([undefined]);
    expect(await priorities(topology.names.urgent('send'))).to.deep.equal([DEFAULT_URGENCY]);
  });
});
