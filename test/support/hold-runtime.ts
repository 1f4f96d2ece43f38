/**
 * Tests of strict order's holds on the guard itself (test/ordering/*-rules.test.ts): a Runtime with
 * only what OrderingGuard and StatusStore read, on a Redis key prefix of its own.
 */
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { Config } from '../../shared/platform/config.js';
import { createLogger } from '../../shared/platform/logger.js';
import { keyspace, type Keyspace } from '../../shared/platform/redis.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import { StageMetrics } from '../../shared/stage/metrics.js';
import { REDIS_URL, scanAll } from './isolation.js';

export interface HoldRuntime {
  redis: Redis;
  keys: Keyspace;
  metrics: StageMetrics;
  /** A runtime with these config values and retry tiers; every one shares the Redis client and metrics. */
  runtime(cfg: Partial<Config>, retryTiersMs: number[]): Runtime<StageMetrics>;
  /** Deletes every key of the prefix and disconnects. */
  cleanup(): Promise<void>;
}

export function holdRuntime(name: string): HoldRuntime {
  const prefix = `pmtest-${name}-${randomBytes(3).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  const keys = keyspace(prefix, 'postmaster');
  const metrics = new StageMetrics(`${name}-test`);
  const log = createLogger({ level: 'silent', service: `${name}-test` });
  return {
    redis,
    keys,
    metrics,
    runtime: (cfg, retryTiersMs) => ({ redis, keys, metrics, log, cfg, topology: { options: { retryTiersMs } } }) as unknown as Runtime<StageMetrics>,
    async cleanup() {
      const left = await scanAll(redis, `${prefix}*`);
      if (left.length) await redis.del(...left);
      redis.disconnect();
    },
  };
}
