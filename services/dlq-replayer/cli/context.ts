/**
 * What a CLI command works with: the configuration (the fleet's own env names, through
 * loadConfig), Redis (jobs, the DLQ lock), the replay queue, and — only for commands that read the
 * DLQ — a broker connection. Logs go to stderr, at `warn` unless LOG_LEVEL says otherwise, so
 * stdout carries only the command's answer.
 */
import type { ChannelModel } from 'amqplib';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Broker } from '../../../shared/broker.js';
import { loadConfig, type Config } from '../../../shared/config.js';
import type { Logger } from '../../../shared/logger.js';
import { createRedis, keyspace, redisDeadlines, type Keyspace } from '../../../shared/redis.js';
import { topologyFromConfig } from '../../../shared/runtime.js';
import { runSteps } from '../../../shared/shutdown.js';
import type { Names } from '../../../shared/topology/names.js';
import { dlqLock, type DlqLock } from '../dlq-lock.js';
import { openReplayQueue, type ReplayJobData, type ReplayResult } from '../jobs.js';
import { LaneIndex } from '../lanes.js';

const CONNECT_TIMEOUT_MS = 10_000;

/** An error the CLI reports in one line, with its exit code (1 failed, 2 refused/usage, 3 DLQ busy). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class CliContext {
  readonly names: Names;
  readonly lanes: LaneIndex;
  readonly redis: Redis;
  readonly keys: Keyspace;
  readonly queue: Queue<ReplayJobData, ReplayResult>;
  readonly lock: DlqLock;
  private broker: Broker | null = null;

  constructor(
    readonly cfg: Config,
    readonly log: Logger,
  ) {
    this.names = topologyFromConfig(cfg).names;
    this.lanes = new LaneIndex(this.names, cfg.shards);
    this.redis = createRedis(cfg, redisDeadlines(cfg));
    this.redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis error'));
    this.keys = keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix);
    this.queue = openReplayQueue(cfg, this.redis);
    this.lock = dlqLock(this.redis, this.keys);
  }

  get dlq(): string {
    return this.names.dlq;
  }

  async conn(): Promise<ChannelModel> {
    if (!this.broker) {
      this.broker = new Broker({ urls: this.cfg.amqpUrl, logger: this.log, publishTimeoutMs: this.cfg.publishTimeoutMs, name: 'postmaster-dlq-cli' });
      await this.broker.waitForConnect(CONNECT_TIMEOUT_MS);
    }
    return this.broker.connection();
  }

  close(): Promise<void> {
    return runSteps(this.log, [
      ['close queue', () => this.queue.close()],
      ['close broker', () => this.broker?.close()],
      ['close redis', () => this.redis.quit().catch(() => this.redis.disconnect())],
    ]);
  }
}

export async function withContext<T>(fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  const cfg = loadConfig(process.env, {}, 'cli');
  const log = pino({ level: process.env.LOG_LEVEL ? cfg.logLevel : 'warn', base: { service: 'postmaster-dlq' } }, pino.destination({ dest: 2, sync: true }));
  const ctx = new CliContext(cfg, log);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

/** Prints the answer: pretty JSON with --json, else the text. */
export function emit(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 2) : text()) + '\n');
}
