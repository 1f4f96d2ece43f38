/**
 * Redis connections (ioredis reconnects by itself) and the key scheme: every key lives under
 * `<REDIS_KEY_PREFIX>:<TOPOLOGY_PREFIX>:`, so a test or a second fleet on the same Redis is isolated.
 */
import { Redis } from 'ioredis';

export interface RedisOptions {
  /** Default 2; `null` (retry forever) for BullMQ's connections. */
  maxRetriesPerRequest?: number | null;
  /**
   * Send the commands issued in one tick of the event loop in one socket write (ioredis
   * `enableAutoPipelining`). Default: on, except for connections with `maxRetriesPerRequest: null`
   * (BullMQ's, whose blocking commands must not wait in — or hold up — a batch).
   */
  autoPipelining?: boolean;
}

export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  const maxRetriesPerRequest = opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest;
  return new Redis(url, {
    maxRetriesPerRequest,
    enableOfflineQueue: true,
    lazyConnect: false,
    enableAutoPipelining: opts.autoPipelining ?? maxRetriesPerRequest !== null,
  });
}

export function keyspace(redisKeyPrefix: string, topologyPrefix: string): (...parts: Array<string | number>) => string {
  const base = `${redisKeyPrefix}:${topologyPrefix}`;
  return (...parts) => [base, ...parts].join(':');
}
export type Keyspace = ReturnType<typeof keyspace>;

/** A Lua script on one client: call it with the number of keys, the keys, then the arguments. */
export type RedisScript = (numKeys: number, ...keysAndArgs: string[]) => Promise<unknown>;

/**
 * Defines `lua` as command `name` on `redis` (once per client; later calls reuse it): ioredis sends
 * the script's text once per connection and EVALSHA after that, falling back to EVAL by itself on
 * NOSCRIPT (a restarted or flushed Redis). The name must be unique to the script's text.
 */
export function defineScript(redis: Redis, name: string, lua: string): RedisScript {
  const client = redis as unknown as Record<string, RedisScript | undefined>;
  if (typeof client[name] !== 'function') redis.defineCommand(name, { lua });
  return (numKeys, ...keysAndArgs) => (client[name] as RedisScript).call(redis, numKeys, ...keysAndArgs);
}
