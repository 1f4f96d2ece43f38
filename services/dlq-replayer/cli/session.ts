/**
 * One command's session: the configuration, the logger, Redis reached within the deadline, then
 * the context (context.ts, which loads the broker and queue libraries only now), closed at the end.
 * Logs go to stderr, at `warn` unless LOG_LEVEL says otherwise, so stdout carries only the
 * command's answer.
 */
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadConfig, maskUrl, type Config } from '../../../shared/platform/config.js';
import { createLogger, type Logger } from '../../../shared/platform/logger.js';
import { createRedis, redisDeadlines } from '../../../shared/platform/redis.js';
import type { CliContext } from './context.js';
import { unreachable } from './errors.js';

/** A Redis client that is ready (it answered), or a CliError once `timeoutMs` has passed. */
async function connectRedis(cfg: Config, log: Logger, timeoutMs: number): Promise<Redis> {
  const redis = createRedis(cfg, redisDeadlines(cfg));
  let last: string | undefined;
  redis.on('error', (err: Error) => {
    last = err.message;
    log.debug({ err: err.message }, 'redis error');
  });
  let timer: NodeJS.Timeout | undefined;
  const ready = await new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    redis.once('ready', () => resolve(true));
  });
  clearTimeout(timer);
  if (ready) return redis;
  redis.disconnect();
  const where = cfg.redisSentinels ? `Redis (Sentinels ${cfg.redisSentinels}, ${cfg.redisSentinelName || 'mymaster'})` : `Redis at ${maskUrl(cfg.redisUrl)}`;
  throw unreachable(where, timeoutMs, last);
}

export async function withContext<T>(connectTimeoutMs: number, fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  const cfg = loadConfig(process.env, {}, 'cli');
  const log = createLogger({ level: process.env.LOG_LEVEL ? cfg.logLevel : 'warn', service: 'postmaster-dlq' }, pino.destination({ dest: 2, sync: true }));
  const redis = await connectRedis(cfg, log, connectTimeoutMs);
  const { CliContext } = await import('./context.js');
  const ctx = new CliContext(cfg, log, redis, connectTimeoutMs);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
