/**
 * A namespace of its own on a shared RabbitMQ and Redis: a fresh vhost and Redis key prefix, both
 * removed by `cleanup()`. Tests and bench runs each take one, so they never see each other's
 * queues or keys; what configuration runs in it is theirs to say.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Management } from '../../shared/amqp/management.js';

export interface SpaceOptions {
  /** Names the vhost and the key prefix: `<name>-<random>`. */
  name: string;
  amqpBase: string;
  redisUrl: string;
  managementUrl: string;
}

export interface Space {
  vhost: string;
  redisKeyPrefix: string;
  /** `amqpBase` with the vhost as its path. */
  amqpUrl: string;
  redisUrl: string;
  managementUrl: string;
  mgmt: Management;
  redis: Redis;
  /** Deletes the vhost and every Redis key under the prefix, then disconnects. Idempotent. */
  cleanup(): Promise<void>;
}

export async function createSpace(o: SpaceOptions): Promise<Space> {
  const id = `${o.name}-${randomBytes(3).toString('hex')}`;
  const mgmt = new Management(o.managementUrl);
  await mgmt.putVhost(id);
  const url = new URL(o.amqpBase);
  url.pathname = '/' + encodeURIComponent(id);
  const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 2 });
  let cleaning: Promise<void> | null = null;
  return {
    vhost: id,
    redisKeyPrefix: id,
    amqpUrl: url.toString(),
    redisUrl: o.redisUrl,
    managementUrl: o.managementUrl,
    mgmt,
    redis,
    cleanup: () =>
      (cleaning ??= (async () => {
        const errors: unknown[] = [];
        await mgmt.deleteVhost(id).catch((err) => errors.push(err));
        await deleteKeys(redis, `${id}*`).catch((err) => errors.push(err));
        redis.disconnect();
        if (errors.length) throw errors[0];
      })()),
  };
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

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  const keys = await scanAll(redis, pattern);
  for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
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
    await conn.close().catch(() => undefined);
  }
}
