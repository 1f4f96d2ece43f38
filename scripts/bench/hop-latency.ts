/**
 * One broker hop's latency at a low rate, with and without Nagle's algorithm: bare amqplib, one
 * persistent message every `intervalMs` published to a quorum queue and consumed (with ack) on the
 * same connection — as in a service, whose one connection carries its publishes and its acks;
 * publish → delivery time for each. Once with amqplib's default socket options (Nagle on: an ack
 * written while the publish before it is unacknowledged waits for the broker's delayed ACK, and
 * the next publish waits behind it) and once with `noDelay: true`, as the fleet's connections have
 * (shared/broker.ts).
 */
import amqplib from 'amqplib';
import { performance } from 'node:perf_hooks';
import { percentile } from './delivery.js';
import { envelopeBytes } from './message.js';
import { withTimeout } from './raw-hop.js';

export interface HopLatency {
  count: number;
  intervalMs: number;
  /** p50 / p99 ms with amqplib's defaults, then with noDelay. */
  nagle: [number, number];
  noDelay: [number, number];
}

const QUEUE = 'bench.hop-latency';

async function oneRun(amqpUrl: string, count: number, intervalMs: number, noDelay: boolean, timeoutMs: number): Promise<[number, number]> {
  const socketOptions = noDelay ? { noDelay: true } : {};
  const conn = await amqplib.connect(amqpUrl, socketOptions);
  try {
    const pub = await conn.createConfirmChannel();
    await pub.assertQueue(QUEUE, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await pub.purgeQueue(QUEUE);
    const sub = await conn.createChannel();
    await sub.prefetch(16);
    const sentAt = new Map<number, number>();
    const latencies: number[] = [];
    let resolveAll: () => void = () => {};
    const all = new Promise<void>((resolve) => (resolveAll = resolve));
    await sub.consume(QUEUE, (m) => {
      if (!m) return;
      const at = sentAt.get(Number(m.properties.messageId));
      if (at !== undefined) latencies.push(Math.round(performance.now() - at));
      sub.ack(m);
      if (latencies.length === count) resolveAll();
    });
    const body = envelopeBytes();
    for (let i = 0; i < count; i++) {
      sentAt.set(i, performance.now());
      pub.sendToQueue(QUEUE, body, { persistent: true, messageId: String(i) });
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    await withTimeout(all, timeoutMs, () => `hop latency: ${latencies.length} of ${count} delivered`);
    await pub.waitForConfirms();
    await pub.deleteQueue(QUEUE);
    latencies.sort((a, b) => a - b);
    return [percentile(latencies, 50), percentile(latencies, 99)];
  } finally {
    await conn.close().catch(() => {});
  }
}

export async function hopLatency(o: { amqpUrl: string; count: number; intervalMs: number; timeoutMs: number }): Promise<HopLatency> {
  const nagle = await oneRun(o.amqpUrl, o.count, o.intervalMs, false, o.timeoutMs);
  const noDelay = await oneRun(o.amqpUrl, o.count, o.intervalMs, true, o.timeoutMs);
  return { count: o.count, intervalMs: o.intervalMs, nagle, noDelay };
}
