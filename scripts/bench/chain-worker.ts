/**
 * One process of the bare chain (bare-chain.ts): the dispatcher's or the sender's unavoidable work
 * and nothing else.
 *
 * - `ROLE=relay`: consumes the dispatch shard queues (one channel each, the workers' prefetch) and
 *   publishes every delivery unchanged to the send lane's consistent-hash exchange on one confirm
 *   channel, keyed by its routing key; acks it once confirmed.
 * - `ROLE=forward`: consumes the send shard queues the same way and posts each message's Cloud API
 *   request to `BASE_URL` (an undici pool with the sender's connections); acks it once answered.
 *
 * Both connect as the services do (noDelay, one socket write per pass of amqplib's multiplexer) and
 * ack as the workers do (shared/consumer.ts `Acks`). No parsing, validation, Redis, ordering,
 * metrics or logging. `GET /` on `PORT` answers `{"done": n}`: readiness, then progress; the
 * forwarder also keeps each message's latency (publish → answer, from the `x-postmaster-accepted-at`
 * header the relay carries over), in the order answered: `GET /latencies?from=K` gives them from the
 * K-th answer on.
 */
import http from 'node:http';
import amqplib from 'amqplib';
import { Pool } from 'undici';
import { batchFrameWrites } from '../../shared/broker.js';
import { Acks, type SettleCounts } from '../../shared/consumer.js';
import { H } from '../../shared/envelope.js';
import { silentLogger } from '../../shared/logger.js';
import { names, type Stage } from '../../shared/topology/names.js';
import { cloudApiBody } from './message.js';
import { SENDER_CONNECTIONS } from './sizes.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`chain-worker: ${name} is not set`);
  return v;
};
const role = env('ROLE');
if (role !== 'relay' && role !== 'forward') throw new Error(`chain-worker: ROLE must be relay or forward, not ${role}`);
const topology = names(env('PREFIX'));
const shards = Number(env('SHARDS'));
const prefetch = Number(env('PREFETCH'));

const conn = await amqplib.connect(env('AMQP_URL'), { noDelay: true });
batchFrameWrites(conn);
const counts: SettleCounts = { frames: 0, deliveries: 0 };
const logger = silentLogger();
let done = 0;
/** Publish → answer (ms) of every message the forwarder handled, in the order answered. */
const latencies: number[] = [];

type Handle = (msg: amqplib.ConsumeMessage, finished: () => void) => void;

async function consumeStage(stage: Stage, handle: Handle): Promise<void> {
  for (let i = 0; i < shards; i++) {
    const queue = topology.shardQueue(stage, i);
    const ch = await conn.createChannel();
    await ch.prefetch(prefetch);
    const acks = new Acks(ch, () => true, counts, logger, queue);
    await ch.consume(queue, (msg) => {
      if (!msg) return;
      acks.track(msg);
      handle(msg, () => {
        done++;
        acks.ack(msg);
      });
    });
  }
}

let pool: Pool | null = null;
if (role === 'relay') {
  const pub = await conn.createConfirmChannel();
  const exchange = topology.laneExchange('send');
  await consumeStage('dispatch', (msg, finished) => {
    const p = msg.properties;
    pub.publish(exchange, msg.fields.routingKey, msg.content, { persistent: true, contentType: p.contentType, messageId: p.messageId, headers: { ...p.headers, [H.stage]: 'send', [H.lane]: 'send' } }, (err) => {
      if (err) throw new Error(`chain-worker: publish nacked: ${String(err)}`);
      finished();
    });
  });
} else {
  pool = new Pool(env('BASE_URL'), { connections: SENDER_CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 });
  const body = cloudApiBody();
  const headers = { authorization: 'Bearer bench', 'content-type': 'application/json' };
  await consumeStage('send', (msg, finished) => {
    pool!
      .request({ method: 'POST', path: '/v21.0/100000000000001/messages', headers, body })
      .then(async (res) => {
        await res.body.json();
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        latencies.push(Date.now() - Number(msg.properties.headers?.[H.acceptedAt]));
        finished();
      })
      .catch((err: Error) => {
        process.stderr.write(`chain-worker: provider call failed: ${err.message}\n`);
        process.exit(1);
      });
  });
}

const server = http.createServer((req, res) => {
  const from = /^\/latencies\?from=(\d+)$/.exec(req.url ?? '');
  res.end(JSON.stringify(from ? latencies.slice(Number(from[1])) : { done }));
});
server.listen(Number(env('PORT')), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  void Promise.all([conn.close().catch(() => {}), pool?.close().catch(() => {})]).then(() => process.exit(0));
});
