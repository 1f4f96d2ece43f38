/**
 * The raw broker hop: bare amqplib, publish with confirms (a pipelined window of unconfirmed
 * publishes, not one at a time) → a quorum queue → consume with a per-message ack, the same
 * ~300-byte persistent body the lanes carry. Publisher and consumer have their own connections.
 */
import amqplib from 'amqplib';
import { CpuMeter, perMessage, type Pids } from './cpu.js';
import { envelopeBytes } from './message.js';

export interface HopResult {
  count: number;
  seconds: number;
  perSecond: number;
  /** CPU ms per message by process (the bench process is both ends of the hop). */
  cpu?: { byProcess: Record<string, number>; total: number };
  /** Rates of every trial, when this is the median of several. */
  trials?: number[];
  /** Queues the hop spread over, when more than one. */
  queues?: number;
  /** The rate it was paced at (messages/s), when paced. */
  rate?: number;
}

export interface RawHopOptions {
  amqpUrl: string;
  count: number;
  /** Unconfirmed publishes in flight. */
  window: number;
  prefetch: number;
  timeoutMs: number;
  /** Other processes whose CPU the hop costs (the broker). */
  pids?: Pids;
}

const QUEUE = 'bench.raw-hop';

export async function rawHop(o: RawHopOptions): Promise<HopResult> {
  const body = envelopeBytes();
  const pubConn = await amqplib.connect(o.amqpUrl);
  const subConn = await amqplib.connect(o.amqpUrl);
  try {
    const admin = await pubConn.createChannel();
    await admin.assertQueue(QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await admin.purgeQueue(QUEUE);
    await admin.close();

    const sub = await subConn.createChannel();
    await sub.prefetch(o.prefetch);
    let consumed = 0;
    let finish!: () => void;
    const allConsumed = new Promise<void>((resolve) => (finish = resolve));
    await sub.consume(QUEUE, (msg) => {
      if (!msg) return;
      sub.ack(msg);
      if (++consumed === o.count) finish();
    });

    const pub = await pubConn.createConfirmChannel();
    const meter = new CpuMeter(o.pids ?? {}, 'amqplib-client');
    const started = process.hrtime.bigint();
    await publishWindowed(o.count, o.window, 'raw hop', (_, done) => pub.publish('', QUEUE, body, { persistent: true, contentType: 'application/json' }, done));
    await withTimeout(allConsumed, o.timeoutMs, () => `raw hop: ${consumed} of ${o.count} consumed`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = perMessage(meter.stop(), o.count);
    await sub.close();
    await pub.close();
    return { count: o.count, seconds, perSecond: o.count / seconds, cpu };
  } finally {
    await pubConn.close().catch(() => {});
    await subConn.close().catch(() => {});
  }
}

/** Keeps `window` publishes unconfirmed at a time until `count` are confirmed; `publish(i, done)` sends the i-th. */
export function publishWindowed(count: number, window: number, what: string, publish: (i: number, done: (err: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let confirmed = 0;
    let failed = false;
    const pump = () => {
      while (!failed && sent < count && sent - confirmed < window) {
        publish(sent++, (err) => {
          if (err) {
            failed = true;
            reject(new Error(`${what}: publish nacked: ${String(err)}`));
            return;
          }
          if (++confirmed === count) resolve();
          else pump();
        });
      }
    };
    pump();
  });
}

/**
 * `count` publishes, `batch` at a time every batch / rate seconds (on schedule, not after the
 * confirms), then every confirm; `publish(i, done)` sends the i-th.
 */
export async function publishPaced(
  count: number,
  rate: number,
  batch: number,
  what: string,
  publish: (i: number, done: (err: unknown) => void) => void,
): Promise<void> {
  const started = Date.now();
  const everyMs = (batch * 1000) / rate;
  const confirms: Promise<void>[] = [];
  for (let sent = 0; sent < count;) {
    // Yields even when behind schedule, so that confirms and deliveries are taken in meanwhile (openLoop in load.ts).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + (sent / batch) * everyMs - Date.now())));
    for (let k = 0; k < batch && sent < count; k++, sent++) {
      const i = sent;
      const confirmed = new Promise<void>((resolve, reject) =>
        publish(i, (err) => (err ? reject(err instanceof Error ? err : new Error(`${what}: message ${i} nacked`)) : resolve())),
      );
      confirmed.catch(() => {}); // a nack before the loop ends is reported by Promise.all below, not as an unhandled rejection
      confirms.push(confirmed);
    }
  }
  await Promise.all(confirms);
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms (${what()})`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
