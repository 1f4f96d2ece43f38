/**
 * The peers: the pipelines a user would write instead of adopting Postmaster, measured with the
 * bench's load generator against the run's provider, each part its own process (`<kind>-ingress.ts`
 * and its consumer in this folder):
 *
 * - `amqp`: express → confirmed publish to one quorum queue → one consumer (prefetch 64) → undici
 *   POST → ack.
 * - `bullmq`: express → `queue.addBulk` per HTTP batch → one Worker (concurrency 64) → undici POST.
 *
 * Throughput as the pipeline's (pipeline.ts `closedThroughput`: same batches, same connections,
 * counted at the provider), then a burst into the peer's ingress with its consumer stopped: how fast
 * it accepts, and whether its queue holds every accepted message. The peer's queue lives in the
 * run's vhost / Redis prefix and is deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import amqplib from 'amqplib';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Pids } from '../cpu.js';
import type { BenchSpace } from '../isolation.js';
import { REDIS_URL } from '../isolation.js';
import { burstLoad } from '../burst.js';
import { closedLoop, IngressClient } from '../load.js';
import { closedThroughput, type Log, type ThroughputResult } from '../pipeline.js';
import { freePort } from '../../lib/ports.js';
import { DIST, spawnChild, type Child } from '../../lib/processes.js';
import type { Provider } from '../provider.js';
import { SENDER_CONNECTIONS, type Sizes } from '../sizes.js';

export type PeerKind = 'amqp' | 'bullmq';

export interface PeerBurst {
  offered: number;
  accepted: number;
  acceptPerSecond: number;
  acceptSeconds: number;
  /** Messages waiting in the peer's queue after the burst (should equal `accepted`). */
  held: number;
}

export interface PeerResult extends ThroughputResult {
  kind: PeerKind;
  burst: PeerBurst;
}

export interface PeerOptions {
  kind: PeerKind;
  space: BenchSpace;
  provider: Provider;
  sizes: Sizes;
  /** The broker's and Redis's pids: the peer's CPU is charged to the one it uses. */
  infra: Pids;
  /** Connections of the load generator's pool (the pipeline run's). */
  clientConnections: number;
  log: Log;
}

/** How one kind of peer is run: its processes' environment, its queue's depth, its clean-up. */
interface PeerQueue {
  env: Record<string, string>;
  /** The infrastructure process it costs CPU in. */
  infra: 'rabbitmq' | 'redis';
  depth(): Promise<number>;
  remove(): Promise<void>;
}

function amqpQueue(space: BenchSpace): PeerQueue {
  const name = 'peer.amqp.messages';
  const onChannel = async <T>(f: (ch: amqplib.Channel) => Promise<T>): Promise<T> => {
    const conn = await amqplib.connect(space.amqpUrl);
    try {
      return await f(await conn.createChannel());
    } finally {
      await conn.close().catch(() => {});
    }
  };
  return {
    env: { AMQP_URL: space.amqpUrl, QUEUE: name, PREFETCH: String(SENDER_CONNECTIONS) },
    infra: 'rabbitmq',
    depth: () => onChannel(async (ch) => (await ch.checkQueue(name)).messageCount),
    remove: () => onChannel(async (ch) => void (await ch.deleteQueue(name))),
  };
}

function bullmqQueue(space: BenchSpace): PeerQueue {
  const name = 'messages';
  const prefix = `${space.redisKeyPrefix}:peer-bullmq`;
  const onQueue = async <T>(f: (q: Queue) => Promise<T>): Promise<T> => {
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const q = new Queue(name, { connection, prefix });
    try {
      return await f(q);
    } finally {
      await q.close().catch(() => {});
      connection.disconnect();
    }
  };
  return {
    env: { REDIS_URL, PREFIX: prefix, QUEUE: name, CONCURRENCY: String(SENDER_CONNECTIONS) },
    infra: 'redis',
    depth: () => onQueue((q) => q.count()),
    remove: () => onQueue((q) => q.obliterate({ force: true })),
  };
}

export async function measurePeer(o: PeerOptions): Promise<PeerResult> {
  const queue = o.kind === 'amqp' ? amqpQueue(o.space) : bullmqQueue(o.space);
  const common = { ...queue.env, TOKEN: randomBytes(8).toString('hex'), PROVIDER_URL: o.provider.url };
  const spawnPart = async (part: 'ingress' | 'consumer', file: string, readyPath: string): Promise<{ child: Child; url: string }> => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const script = path.join(DIST, 'scripts', 'bench', 'peers', file);
    return { child: await spawnChild({ name: `peer-${o.kind}-${part}`, script, env: { ...common, PORT: String(port) }, readyUrl: url + readyPath }), url };
  };
  const { child: ingress, url } = await spawnPart('ingress', `${o.kind}-ingress.js`, '/healthz');
  const { child: consumer } = await spawnPart('consumer', o.kind === 'amqp' ? 'amqp-consumer.js' : 'bullmq-worker.js', '/');
  const client = new IngressClient(url, common.TOKEN, o.clientConnections);
  try {
    const pids: Pids = { ingress: ingress.pid, consumer: consumer.pid, provider: o.provider.child.pid };
    if (o.infra[queue.infra] !== undefined) pids[queue.infra] = o.infra[queue.infra];
    const r = await closedThroughput(client, o.provider.ledger, o.sizes, o.sizes.pipeline, pids, o.log, `peer ${o.kind}`);
    o.log(`peer ${o.kind}: ${r.perSecond.toFixed(0)}/s; CPU ms/msg ${JSON.stringify(r.cpu.byProcess)}`);
    await consumer.stop(10_000);
    const burst = await peerBurst(client, queue, o.sizes);
    o.log(`peer ${o.kind} burst: ${burst.accepted} accepted at ${burst.acceptPerSecond.toFixed(0)}/s, ${burst.held} in its queue`);
    return { kind: o.kind, ...r, burst };
  } finally {
    await client.close();
    await Promise.all([ingress.stop(10_000), consumer.stop(10_000)]);
    await queue.remove().catch((err: Error) => o.log(`peer ${o.kind}: could not remove its queue: ${err.message}`));
  }
}

/** The burst's shape (batches, in flight, users) with the peer's count, nothing consuming. */
async function peerBurst(client: IngressClient, queue: PeerQueue, s: Sizes): Promise<PeerBurst> {
  const before = await queue.depth();
  const acc = await closedLoop(client, burstLoad(s, s.peerBurst, Date.now()));
  const acceptSeconds = (acc.lastAcceptedAt - acc.firstSentAt) / 1000;
  return {
    offered: s.peerBurst,
    accepted: acc.ids.length,
    acceptPerSecond: acc.ids.length / acceptSeconds,
    acceptSeconds,
    held: (await queue.depth()) - before,
  };
}
