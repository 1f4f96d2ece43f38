/**
 * The amqplib peer's consumer: one channel on the quorum queue at prefetch PREFETCH; each message
 * is posted to the provider and acked once answered 200 (requeued otherwise).
 */
import amqplib from 'amqplib';
import { cloudApiSender, env, onSigterm, serveReady, type PeerJob } from './common.js';

const queue = env('QUEUE');
const prefetch = Number(env('PREFETCH'));
const provider = cloudApiSender(prefetch);
const conn = await amqplib.connect(env('AMQP_URL'), { noDelay: true });
const ch = await conn.createChannel();
await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
await ch.prefetch(prefetch);
await ch.consume(queue, (msg) => {
  if (!msg) return;
  provider.send(JSON.parse(msg.content.toString()) as PeerJob).then(
    () => ch.ack(msg),
    () => ch.nack(msg, false, true),
  );
});
onSigterm(serveReady(), async () => {
  await conn.close();
  await provider.close();
});
