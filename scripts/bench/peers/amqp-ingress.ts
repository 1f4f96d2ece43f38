/**
 * The amqplib peer's ingress: express → a confirmed publish of each message to one quorum queue;
 * a batch is answered once the broker confirmed all of its messages.
 */
import amqplib from 'amqplib';
import { env, onSigterm, serveIngress, type PeerJob } from './common.js';

const queue = env('QUEUE');
const conn = await amqplib.connect(env('AMQP_URL'), { noDelay: true });
const ch = await conn.createConfirmChannel();
await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });

function publish(job: PeerJob): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.publish('', queue, Buffer.from(JSON.stringify(job)), { persistent: true, messageId: job.id, contentType: 'application/json' }, (err) =>
      err ? reject(new Error('nacked by the broker')) : resolve(),
    );
  });
}

const server = serveIngress(async (jobs) => {
  await Promise.all(jobs.map(publish));
});
onSigterm(server, () => conn.close());
