/**
 * Redis connections (ioredis reconnects by itself) and the key scheme: every key lives under
 * `<REDIS_KEY_PREFIX>:<TOPOLOGY_PREFIX>:`, so a test or a second fleet on the same Redis is isolated.
 * Every wait on Redis has a deadline (REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS): a Redis
 * that accepts connections but never answers fails commands instead of freezing their callers.
 */
import { Redis } from 'ioredis';
import type { Config } from './config.js';

export interface RedisOptions {
  /** Default 2; `null` (retry forever) for BullMQ's connections. */
  maxRetriesPerRequest?: number | null;
  /**
   * Send the commands issued in one tick of the event loop in one socket write (ioredis
   * `enableAutoPipelining`). Default: on, except for connections with `maxRetriesPerRequest: null`
   * (BullMQ's, whose blocking commands must not wait in — or hold up — a batch).
   */
  autoPipelining?: boolean;
  /**
   * Deadline of each command (ioredis `commandTimeout`); it runs from the call, so a command held in
   * the offline queue while Redis is away, or sent to a Redis that never answers, fails in time too.
   * 0 or unset: none. Ignored for connections with `maxRetriesPerRequest: null`: BullMQ's worker
   * duplicates them for BZPOPMIN, which blocks for up to 10 s by design and has BullMQ's own watchdog.
   */
  commandTimeoutMs?: number;
  /** Deadline of one TCP connect (ioredis `connectTimeout`; it reconnects after it). Unset: 10 s. */
  connectTimeoutMs?: number;
}

/** The deadlines of the configuration, for createRedis. */
export function redisDeadlines(cfg: Pick<Config, 'redisCommandTimeoutMs' | 'redisConnectTimeoutMs'>): RedisOptions {
  return { commandTimeoutMs: cfg.redisCommandTimeoutMs, connectTimeoutMs: cfg.redisConnectTimeoutMs };
}

export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  const maxRetriesPerRequest = opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest;
  const commandTimeout = maxRetriesPerRequest !== null && opts.commandTimeoutMs ? opts.commandTimeoutMs : undefined;
  return new Redis(url, {
    maxRetriesPerRequest,
    enableOfflineQueue: true,
    lazyConnect: false,
    enableAutoPipelining: opts.autoPipelining ?? maxRetriesPerRequest !== null,
    ...(commandTimeout ? { commandTimeout } : {}),
    ...(opts.connectTimeoutMs ? { connectTimeout: opts.connectTimeoutMs } : {}),
  });
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/**
 * `work`, or a DeadlineError once `ms` have passed (0: no deadline). For waits that no command
 * timeout bounds: BullMQ waiting for a connection to become ready, or a caller whose deadline is
 * shorter than the connection's. The work itself goes on; only the wait for it ends.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  if (!(ms > 0)) return work;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
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
