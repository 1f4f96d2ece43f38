/**
 * Redis connections (ioredis reconnects by itself) and the key scheme: every key lives under
 * `<REDIS_KEY_PREFIX>:<TOPOLOGY_PREFIX>:`, so a test or a second fleet on the same Redis is isolated.
 */
import { Redis } from 'ioredis';

export function createRedis(url: string, opts: { maxRetriesPerRequest?: number | null } = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest,
    enableOfflineQueue: true,
    lazyConnect: false,
  });
}

export function keyspace(redisKeyPrefix: string, topologyPrefix: string): (...parts: Array<string | number>) => string {
  const base = `${redisKeyPrefix}:${topologyPrefix}`;
  return (...parts) => [base, ...parts].join(':');
}
export type Keyspace = ReturnType<typeof keyspace>;
