/**
 * Test helpers that look into the lanes through raw amqplib (never through the code under test), and
 * make the broker refuse publishes to a stage's shards. Send requests go to the send lanes (one hop),
 * webhooks to the dispatch lanes.
 */
import type { Envelope } from '../../shared/domain/envelope.js';
import type { Stage } from '../../shared/amqp/topology/names.js';
import type { Fleet } from '../support/fleet.js';
import { queueDepths, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

/** Every queue of a stage (shards and urgent lane). */
export function stageQueues(fleet: Fleet, stage: Stage): string[] {
  const n = fleet.ingress.rt.topology.names;
  return [...Array.from({ length: fleet.cfg.shards }, (_, i) => n.shardQueue(stage, i)), n.urgent(stage)];
}

/** Where the ingress puts send requests. */
export const sendQueues = (fleet: Fleet): string[] => stageQueues(fleet, 'send');
/** Where the ingress puts webhook events. */
export const dispatchQueues = (fleet: Fleet): string[] => stageQueues(fleet, 'dispatch');

/** Every lane queue of both stages. */
export function laneQueues(fleet: Fleet): string[] {
  return [...dispatchQueues(fleet), ...sendQueues(fleet)];
}

export async function totalDepth(fleet: Fleet, queues = laneQueues(fleet)): Promise<number> {
  return Object.values(await queueDepths(fleet.cfg.amqpUrl, queues)).reduce((a, b) => a + b, 0);
}

export interface Peeked {
  queue: string;
  routingKey: string;
  env: Envelope;
}

/**
 * The messages waiting in `queues`, read through raw amqplib without acking them (they go back to
 * their queue when the channel closes). Only for queues nobody else consumes.
 */
export async function peek(amqpUrl: string, queues: string[]): Promise<Peeked[]> {
  const depths = await queueDepths(amqpUrl, queues);
  const { default: amqplib } = await import('amqplib');
  const conn = await amqplib.connect(amqpUrl);
  const out: Peeked[] = [];
  try {
    for (const queue of queues) {
      if (depths[queue] === 0) continue;
      const ch = await conn.createChannel();
      await new Promise<void>((resolve) => {
        let got = 0;
        void ch.consume(queue, (msg) => {
          if (!msg) return;
          out.push({ queue, routingKey: msg.fields.routingKey, env: JSON.parse(msg.content.toString('utf8')) });
          if (++got === depths[queue]) resolve();
        });
      });
      await ch.close();
    }
  } finally {
    await conn.close();
  }
  return out;
}

/**
 * Caps every shard of `stage` at `maxLength` messages with reject-publish, so the broker nacks what
 * does not fit. Lift it by raising the limit: on RabbitMQ 3.10 a quorum queue whose max-length
 * policy is deleted keeps refusing publishes.
 */
export async function capShards(iso: Isolation, fleet: Fleet, maxLength: number, stage: Stage = 'send'): Promise<void> {
  const shards = stageQueues(fleet, stage).filter((q) => !q.endsWith('.urgent'));
  await iso.mgmt.putPolicy(iso.vhost, {
    name: 'test-full',
    pattern: `\\.${stage}\\.\\d+$`,
    applyTo: 'queues',
    priority: 100,
    definition: { 'max-length': maxLength, overflow: 'reject-publish' },
  });
  await waitFor(async () => (await iso.mgmt.queues(iso.vhost)).filter((q) => shards.includes(q.name) && q.policy === 'test-full').length === shards.length, {
    what: `the test-full policy on every ${stage} shard`,
  });
}
