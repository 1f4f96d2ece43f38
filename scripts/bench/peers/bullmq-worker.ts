/** The BullMQ peer's worker: CONCURRENCY jobs at a time, each posted to the provider (a throw fails the job for a retry). */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { cloudApiSender, env, onSigterm, serveReady, type PeerJob } from './common.js';

const concurrency = Number(env('CONCURRENCY'));
const provider = cloudApiSender(concurrency);
const connection = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
const worker = new Worker<PeerJob>(env('QUEUE'), (job) => provider.send(job.data), { connection, prefix: env('PREFIX'), concurrency });
await worker.waitUntilReady();
onSigterm(serveReady(), async () => {
  await worker.close();
  connection.disconnect();
  await provider.close();
});
