/** The BullMQ peer's ingress: express → `queue.addBulk` of each HTTP batch. */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { env, onSigterm, serveIngress } from './common.js';

const connection = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
const queue = new Queue(env('QUEUE'), {
  connection,
  prefix: env('PREFIX'),
  defaultJobOptions: { removeOnComplete: true, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
});
await queue.waitUntilReady();

const server = serveIngress(async (jobs) => {
  await queue.addBulk(jobs.map((data) => ({ name: 'send', data })));
});
onSigterm(server, async () => {
  await queue.close();
  connection.disconnect();
});
