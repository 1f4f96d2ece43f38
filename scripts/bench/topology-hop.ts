/**
 * The raw hop again, through the lanes' own topology instead of one queue: bare amqplib publishes
 * with confirms (the raw hop's window) to a stage's shard exchange, keyed by the user's shard and
 * with the headers `publishToStage` sets, into its quorum shard queues with their policy (single
 * active consumer, delivery limit, at-least-once dead-lettering); one consumer channel per shard
 * with the workers' prefetch, acked as the workers ack (what was delivered by the next turn of the
 * event loop, in one `basic.ack` with `multiple`: shared/stage/consumer.ts). No Redis, no HTTP, no
 * service code.
 *
 * It separates what the topology costs the broker (many queues, each getting a few messages at a
 * time, the exchange, the headers) from what the services' own work costs: `limit_per_s` counts two
 * raw hops through one queue, this counts two hops through the shards.
 *
 * With `rate`, the same hop is paced instead: batches of `batch` messages on schedule (the
 * pipeline's load shape), to read what one hop costs the broker at the rate the pipeline reached —
 * a broker batches less, and spends more per message, when it is not saturated.
 */
import amqplib from 'amqplib';
import { assertTopology } from '../../shared/amqp/topology/assert.js';
import type { Config } from '../../shared/platform/config.js';
import type { Topology } from '../../shared/amqp/topology/declaration.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import { H } from '../../shared/domain/envelope.js';
import { CpuMeter, perMessage, type Pids } from './cpu.js';
import { envelopeBytes, users } from './message.js';
import { routingKeyFor } from '../../shared/amqp/publish.js';
import { publishPaced, publishWindowed, withTimeout, type HopResult } from './raw-hop.js';

export interface TopologyHopOptions {
  amqpUrl: string;
  vhost: string;
  managementUrl: string;
  /** The fleet's configuration: shards, prefetch, retry tiers, delivery limit. */
  cfg: Config;
  count: number;
  /** Unconfirmed publishes in flight (the raw hop's). */
  window: number;
  users: number;
  timeoutMs: number;
  pids?: Pids;
  /** Messages per second, sent `batch` at a time on schedule; unset: as fast as `window` allows. */
  rate?: number;
  batch?: number;
}

/** A prefix of its own: the fleet's topology in the same vhost is left alone. */
const PREFIX = 'bench-topology-hop';

export async function topologyHop(o: TopologyHopOptions): Promise<HopResult> {
  const topology = topologyFromConfig({ ...o.cfg, topologyPrefix: PREFIX });
  const lane = topology.names.laneExchange('dispatch');
  const shards = Array.from({ length: o.cfg.shards }, (_, i) => topology.names.shardQueue('dispatch', i));
  const body = envelopeBytes();
  const keys = users(o.users).map((u) => routingKeyFor(topology, 'dispatch', u));
  const pubConn = await amqplib.connect(o.amqpUrl);
  const subConn = await amqplib.connect(o.amqpUrl);
  try {
    await assertTopology(pubConn, topology, { mode: 'assert', managementUrl: o.managementUrl, vhost: o.vhost });
    const admin = await pubConn.createChannel();
    for (const q of shards) await admin.purgeQueue(q);

    let consumed = 0;
    let finish!: () => void;
    const allConsumed = new Promise<void>((resolve) => (finish = resolve));
    const subs: amqplib.Channel[] = [];
    for (const q of shards) {
      const ch = await subConn.createChannel();
      await ch.prefetch(o.cfg.shardPrefetch);
      let last: amqplib.ConsumeMessage | null = null;
      await ch.consume(q, (msg) => {
        if (!msg) return;
        if (!last) setImmediate(() => (ch.ack(last!, true), (last = null)));
        last = msg;
        if (++consumed === o.count) finish();
      });
      subs.push(ch);
    }

    const pub = await pubConn.createConfirmChannel();
    const meter = new CpuMeter(o.pids ?? {}, 'amqplib-client');
    const started = process.hrtime.bigint();
    const publish = lanePublisher(pub, lane, keys, body, 'm');
    if (o.rate) await publishPaced(o.count, o.rate, o.batch ?? 50, 'topology hop', publish);
    else await publishWindowed(o.count, o.window, 'topology hop', publish);
    await withTimeout(allConsumed, o.timeoutMs, () => `topology hop: ${consumed} of ${o.count} consumed`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = perMessage(meter.stop(), o.count);
    // The last run's ack is still waiting for its turn of the event loop (queued before this one):
    // it goes out before the channels close, or amqplib throws it at a closing channel.
    await new Promise((resolve) => setImmediate(resolve));
    for (const ch of subs) await ch.close();
    await pub.close();
    // Its queues go now, so that the pipeline's measurements do not share the broker with them.
    await removeTopology(admin, topology);
    await admin.close();
    return { count: o.count, seconds, perSecond: o.count / seconds, cpu, queues: shards.length };
  } finally {
    await pubConn.close().catch(() => {});
    await subConn.close().catch(() => {});
  }
}

/**
 * Publishes the i-th message to a stage's lane exchange as `publishToStage` does: keyed by one of
 * `keys` (the users' routing keys), with the lanes' headers, persistent, message id `<idPrefix><i>`.
 */
export function lanePublisher(
  pub: amqplib.ConfirmChannel,
  exchange: string,
  keys: string[],
  body: Buffer,
  idPrefix: string,
): (i: number, done: (err: unknown) => void) => void {
  return (i, done) => {
    const headers = { [H.lane]: 'dispatch', [H.stage]: 'dispatch', [H.attempt]: 0, [H.acceptedAt]: Date.now() };
    pub.publish(exchange, keys[i % keys.length], body, { persistent: true, contentType: 'application/json', messageId: `${idPrefix}${i}`, headers }, done);
  };
}

/** Deletes a bench topology's queues and exchanges, so that later measurements do not share the broker with them. */
export async function removeTopology(ch: amqplib.Channel, topology: Topology): Promise<void> {
  for (const q of topology.queues) await ch.deleteQueue(q.name);
  for (const ex of topology.exchanges) await ch.deleteExchange(ex.name);
}
