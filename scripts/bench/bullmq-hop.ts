/**
 * The raw hop's work done by one BullMQ queue on the same Redis: add (a window of adds in flight)
 * → a worker processes the job (does nothing with it) → the job completes. Keys live under the
 * run's Redis prefix, so the run's clean-up removes them.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { CpuMeter, perMessage, type Pids } from './cpu.js';
import { envelopeBytes } from './message.js';
import { withTimeout, type HopResult } from './raw-hop.js';

export interface BullmqHopOptions {
  redisUrl: string;
  prefix: string;
  count: number;
  /** Adds in flight at once. */
  window: number;
  /** Worker concurrency. */
  concurrency: number;
  timeoutMs: number;
  /** Other processes whose CPU the hop costs (Redis). */
  pids?: Pids;
}

const QUEUE = 'bench-hop';

export async function bullmqHop(o: BullmqHopOptions): Promise<HopResult> {
  const data = { envelope: envelopeBytes().toString() };
  const producerConn = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const workerConn = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE, { connection: producerConn, prefix: o.prefix });
  let completed = 0;
  let finish!: () => void;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const worker = new Worker(QUEUE, async () => undefined, { connection: workerConn, prefix: o.prefix, concurrency: o.concurrency, autorun: false });
  worker.on('completed', () => {
    if (++completed === o.count) finish();
  });
  try {
    await worker.waitUntilReady();
    void worker.run();
    const meter = new CpuMeter(o.pids ?? {}, 'bullmq-client');
    const started = process.hrtime.bigint();
    let next = 0;
    const lane = async () => {
      while (next < o.count) {
        next++;
        await queue.add('hop', data, { removeOnComplete: true, removeOnFail: true });
      }
    };
    await Promise.all(Array.from({ length: o.window }, lane));
    await withTimeout(allDone, o.timeoutMs, () => `bullmq hop: ${completed} of ${o.count} completed`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { count: o.count, seconds, perSecond: o.count / seconds, cpu: perMessage(meter.stop(), o.count) };
  } finally {
    await worker.close().catch(() => {});
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close().catch(() => {});
    producerConn.disconnect();
    workerConn.disconnect();
  }
}
