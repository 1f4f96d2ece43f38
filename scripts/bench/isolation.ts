/**
 * A benchmark run's own namespace: a fresh RabbitMQ vhost and Redis key prefix (the few lines of
 * test/support/isolation.ts the bench needs; scripts do not import from test/), removed afterwards
 * even when the run failed. Everything targets 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../shared/config.js';
import { Management } from '../../shared/management.js';

// PMBENCH_AMQP_URL / PMBENCH_MANAGEMENT_URL: bench another node on this machine (one configured
// differently, e.g. a private node started with its own rabbitmq.conf) instead of the machine's own.
export const AMQP_BASE = process.env.PMBENCH_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = 'redis://127.0.0.1:6379';
export const MGMT_URL = process.env.PMBENCH_MANAGEMENT_URL || Management.urlFromAmqp(AMQP_BASE);

export interface BenchSpace {
  vhost: string;
  redisKeyPrefix: string;
  amqpUrl: string;
  redis: Redis;
  /** Production-like service configuration in this namespace (secrets set, NODE_ENV=production). */
  config(overrides?: Partial<Config>): Config;
  /** Deletes the vhost and every Redis key under the prefix. Idempotent. */
  cleanup(): Promise<void>;
}

/**
 * Secrets of this run only: production mode refuses the development defaults and short secrets. It
 * also refuses the bundled simulator (plain http) and the echo bot, which the bench uses on purpose:
 * POSTMASTER_ALLOW_INSECURE lets it start (each service logs what it let through).
 */
function runSecrets(): Partial<Config> {
  const s = () => randomBytes(32).toString('hex');
  return { ingressApiToken: s(), whatsappAppSecret: s(), whatsappVerifyToken: s(), whatsappAccessToken: s(), botHandlerToken: s(), allowInsecure: '1' };
}

export async function createSpace(): Promise<BenchSpace> {
  const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const vhost = `pmbench-${id}`;
  const redisKeyPrefix = `pmbench-${id}`;
  const mgmt = new Management(MGMT_URL);
  await mgmt.putVhost(vhost);
  const url = new URL(AMQP_BASE);
  url.pathname = '/' + encodeURIComponent(vhost);
  const amqpUrl = url.toString();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  const secrets = runSecrets();
  let cleaning: Promise<void> | null = null;
  return {
    vhost,
    redisKeyPrefix,
    amqpUrl,
    redis,
    // The caller's environment tunes the fleet (SHARDS, SHARD_PREFETCH, …: the bench measures the
    // configuration it is given); where the run's vhost, Redis prefix and limits come from is fixed.
    config: (overrides = {}) =>
      loadConfig(
        process.env,
        {
          env: 'production',
          amqpUrl,
          redisUrl: REDIS_URL,
          redisKeyPrefix,
          managementUrl: MGMT_URL,
          ingressHost: '127.0.0.1',
          logLevel: 'warn',
          whatsappThroughputPerSecond: 0,
          whatsappPairIntervalMs: 0,
          ...secrets,
          ...overrides,
        },
      ),
    cleanup: () =>
      (cleaning ??= (async () => {
        const errors: unknown[] = [];
        await mgmt.deleteVhost(vhost).catch((err) => errors.push(err));
        await deleteKeys(redis, redisKeyPrefix).catch((err) => errors.push(err));
        redis.disconnect();
        if (errors.length) throw errors[0];
      })()),
  };
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}
