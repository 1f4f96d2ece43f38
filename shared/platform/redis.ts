/**
 * Redis connections (ioredis reconnects by itself; with REDIS_SENTINELS it follows the primary the
 * Sentinels name, also after a failover), the wait for replicas, and the key scheme: every key lives under
 * `<REDIS_KEY_PREFIX>:<TOPOLOGY_PREFIX>:`, so a test or a second fleet on the same Redis is isolated.
 * Every wait on Redis has a deadline (REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS): a Redis
 * that accepts connections but never answers fails commands instead of freezing their callers.
 */
import { Redis, type RedisOptions as RedisClientOptions } from 'ioredis';
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

/**
 * Where Redis is: REDIS_URL alone, or Sentinels (REDIS_SENTINELS, REDIS_SENTINEL_NAME) that name
 * the primary, REDIS_URL then giving only the credentials, db and TLS. A Config is one.
 */
export type RedisEndpoint = Pick<Config, 'redisUrl'> & Partial<Pick<Config, 'redisSentinels' | 'redisSentinelName' | 'redisSentinelPassword'>>;

/** "h1:26379,h2:26379" → [{host, port}…]; empty → []. */
export function parseSentinels(list: string | undefined): Array<{ host: string; port: number }> {
  return (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((hp) => {
      const at = hp.lastIndexOf(':');
      return { host: hp.slice(0, at), port: Number(hp.slice(at + 1)) };
    });
}

/**
 * ioredis options of a Sentinel endpoint. Why these settings:
 * - `failoverDetector`: each client subscribes to the Sentinels' +switch-master and drops its
 *   connection at once, also when the old primary is still reachable (a partition, a manual
 *   failover) and would otherwise keep taking — or refusing — writes;
 * - `reconnectOnError` READONLY: a client that still reached a demoted primary reconnects
 *   (asking the Sentinels again) and resends the refused command, which had no effect;
 * - `retryStrategy` capped at 500 ms: after a SIGKILL the Sentinels keep naming the dead primary
 *   until they agree (down-after-milliseconds + election); the client must not then sleep the
 *   default 2 s before asking again;
 * - `sentinelCommandTimeout`: a Sentinel that accepts connections but never answers is skipped.
 * REDIS_URL's host and port are ignored; `rediss://` makes the primary's connection TLS
 * (enableTLSForSentinelMode), the Sentinels' own connections stay plain.
 */
function sentinelOptions(ep: RedisEndpoint, connectTimeoutMs: number | undefined): RedisClientOptions {
  const u = new URL(ep.redisUrl);
  const db = Number(u.pathname.replace(/^\//, '') || 0);
  const tls = u.protocol === 'rediss:';
  return {
    sentinels: parseSentinels(ep.redisSentinels),
    name: ep.redisSentinelName || 'mymaster',
    ...(ep.redisSentinelPassword ? { sentinelPassword: ep.redisSentinelPassword } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { db } : {}),
    ...(tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    failoverDetector: true,
    sentinelCommandTimeout: connectTimeoutMs ?? 3000,
    retryStrategy: (times: number) => Math.min(times * 50, 500),
    reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
  };
}

/** Every Redis client of the fleet comes from here, so that REDIS_SENTINELS reaches each of them. */
export function createRedis(ep: RedisEndpoint, opts: RedisOptions = {}): Redis {
  const maxRetriesPerRequest = opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest;
  const commandTimeout = maxRetriesPerRequest !== null && opts.commandTimeoutMs ? opts.commandTimeoutMs : undefined;
  const common: RedisClientOptions = {
    maxRetriesPerRequest,
    enableOfflineQueue: true,
    lazyConnect: false,
    enableAutoPipelining: opts.autoPipelining ?? maxRetriesPerRequest !== null,
    ...(commandTimeout ? { commandTimeout } : {}),
    ...(opts.connectTimeoutMs ? { connectTimeout: opts.connectTimeoutMs } : {}),
  };
  if (parseSentinels(ep.redisSentinels).length === 0) return new Redis(ep.redisUrl, common);
  return closesDetector(new Redis({ ...common, ...sentinelOptions(ep, opts.connectTimeoutMs) }));
}

/**
 * quit() ends a client without telling its connector, whose failover detector then keeps its
 * Sentinel subscriptions (and the process) alive; disconnect() on 'end' closes them. Also for the
 * client's duplicates (BullMQ's workers duplicate their connection and quit the copy).
 */
function closesDetector(redis: Redis): Redis {
  redis.on('end', () => redis.disconnect());
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override) => closesDetector(duplicate(override));
  return redis;
}

/** Fewer replicas than REDIS_WAIT_REPLICAS acknowledged a write: a failover now could lose it. */
export class ReplicaAckError extends Error {
  override readonly name = 'ReplicaAckError';
  /** The write is on the primary; whether it outlives a failover is not known. */
  readonly outcomeUnknown = true;
}

/**
 * Waits until REDIS_WAIT_REPLICAS replicas have every write this connection made so far (Redis
 * `WAIT`), at most REDIS_WAIT_TIMEOUT_MS; throws ReplicaAckError if fewer did. A no-op when
 * REDIS_WAIT_REPLICAS is 0. It must run on the connection that did the write: WAIT counts up to
 * that client's last write (and so everything the primary replicated before it, from any
 * connection). WAIT blocks its connection in Redis until it returns: commands queued behind it
 * on the same client wait too.
 */
export async function waitForReplicas(redis: Redis, cfg: Pick<Config, 'redisWaitReplicas' | 'redisWaitTimeoutMs'>, what: string): Promise<void> {
  const want = cfg.redisWaitReplicas;
  if (!(want > 0)) return;
  const ms = Math.max(1, cfg.redisWaitTimeoutMs); // WAIT's 0 is "forever"
  const acked = await redis.wait(want, ms);
  if (acked < want) throw new ReplicaAckError(`${what}: ${acked} of ${want} Redis replica(s) acknowledged the write within ${ms} ms`);
}

/** ioredis's error for a command unanswered within REDIS_COMMAND_TIMEOUT_MS (a frozen or partitioned Redis); the command may still run. */
export function isCommandTimeout(err: unknown): boolean {
  return (err as Error | null)?.message === 'Command timed out';
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
  return (...parts) => {
    // Every hot-path key goes through here (several a message): a loop, not an array and a join.
    let key = base;
    for (const p of parts) key += `:${p}`;
    return key;
  };
}
export type Keyspace = ReturnType<typeof keyspace>;

/** What a store in Redis takes of a service's runtime (shared/amqp/runtime.ts): the client, the fleet's keys, the config. */
export interface RedisContext {
  redis: Redis;
  keys: Keyspace;
  cfg: Config;
}
