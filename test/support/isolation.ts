/**
 * Test isolation: every test file gets its own RabbitMQ vhost and Redis key prefix, both removed
 * afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../shared/config.js';
import { Management } from '../../shared/management.js';

export const AMQP_BASE = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const MGMT_URL = process.env.RABBITMQ_MANAGEMENT_URL || Management.urlFromAmqp(AMQP_BASE);

export interface Isolation {
  vhost: string;
  redisKeyPrefix: string;
  amqpUrl: string;
  mgmt: Management;
  redis: Redis;
  /** Config for a service in this isolation, with test-friendly defaults and overrides. */
  config(overrides?: Partial<Config>): Config;
  cleanup(): Promise<void>;
}

export async function isolate(name: string): Promise<Isolation> {
  const id = `${name}-${randomBytes(3).toString('hex')}`;
  const vhost = `pmtest-${id}`;
  const mgmt = new Management(MGMT_URL);
  await mgmt.putVhost(vhost);
  const base = new URL(AMQP_BASE);
  base.pathname = '/' + encodeURIComponent(vhost);
  const amqpUrl = base.toString();
  const redisKeyPrefix = `pmtest-${id}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  return {
    vhost,
    redisKeyPrefix,
    amqpUrl,
    mgmt,
    redis,
    config: (overrides = {}) =>
      loadConfig(
        {},
        {
          env: 'test',
          amqpUrl,
          redisUrl: REDIS_URL,
          redisKeyPrefix,
          managementUrl: MGMT_URL,
          ingressPort: 0,
          ingressHost: '127.0.0.1',
          metricsPort: 0,
          logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
          shards: 4,
          retryTiers: '200ms,400ms,800ms',
          shutdownGraceMs: 5000,
          leaseTtlMs: 1500,
          whatsappThroughputPerSecond: 0,
          whatsappPairIntervalMs: 0,
          whatsappPairBurst: 0,
          ...overrides,
        },
      ),
    async cleanup() {
      await mgmt.deleteVhost(vhost);
      const keys = await scanAll(redis, `${redisKeyPrefix}*`);
      for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
      redis.disconnect();
    },
  };
}

/** Exact message counts through raw amqplib (the management API's counts lag by seconds). */
export async function queueDepths(amqpUrl: string, queues: string[]): Promise<Record<string, number>> {
  const { default: amqplib } = await import('amqplib');
  const conn = await amqplib.connect(amqpUrl);
  try {
    const out: Record<string, number> = {};
    for (const q of queues) {
      const ch = await conn.createChannel();
      out[q] = (await ch.checkQueue(q)).messageCount;
      await ch.close();
    }
    return out;
  } finally {
    await conn.close();
  }
}

/** Every key matching a pattern: SCAN walks the keyspace in steps, so follow the cursor to its end. */
export async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}
