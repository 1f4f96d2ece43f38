/**
 * What a CLI command works with: the configuration (the fleet's own env names, through
 * loadConfig), Redis (jobs, the DLQ lock; connected by session.ts), the replay queue, and — only
 * for commands that read the DLQ — a broker connection, reached within the deadline
 * (--connect-timeout) or failing with one line and exit 4, the attempts' own warnings kept back
 * (they show at LOG_LEVEL=debug).
 */
import type { ChannelModel } from 'amqplib';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Broker } from '../../../shared/amqp/broker.js';
import { maskUrl, type Config } from '../../../shared/platform/config.js';
import type { Logger } from '../../../shared/platform/logger.js';
import { keyspace, type Keyspace } from '../../../shared/platform/redis.js';
import { topologyFromConfig } from '../../../shared/amqp/runtime.js';
import { runSteps } from '../../../shared/platform/shutdown.js';
import type { Names } from '../../../shared/amqp/topology/names.js';
import { dlqLock, type DlqLock } from '../dlq-lock.js';
import { openReplayQueue, type ReplayJobData, type ReplayResult } from '../jobs.js';
import { LaneIndex } from '../lanes.js';
import { unreachable } from './errors.js';

export { CliError, UNREACHABLE } from './errors.js';

export class CliContext {
  readonly names: Names;
  readonly lanes: LaneIndex;
  readonly redis: Redis;
  readonly keys: Keyspace;
  readonly queue: Queue<ReplayJobData, ReplayResult>;
  readonly lock: DlqLock;
  private broker: Broker | null = null;

  /** `redis` is connected (connectRedis). */
  constructor(
    readonly cfg: Config,
    readonly log: Logger,
    redis: Redis,
    private readonly connectTimeoutMs: number,
  ) {
    this.names = topologyFromConfig(cfg).names;
    this.lanes = new LaneIndex(this.names, cfg.shards);
    this.redis = redis;
    this.keys = keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix);
    this.queue = openReplayQueue(cfg, this.redis);
    // BullMQ re-emits the connection's errors, and prints them to stderr without a listener; the
    // command fails by itself on a Redis that went away, so they are logged as the connection's are.
    this.queue.on('error', (err: Error) => log.debug({ err: err.message }, 'replay queue error'));
    this.lock = dlqLock(this.redis, this.keys);
  }

  get dlq(): string {
    return this.names.dlq;
  }

  async conn(): Promise<ChannelModel> {
    if (!this.broker) {
      const logger = this.log.isLevelEnabled('debug') ? this.log : this.log.child({}, { level: 'error' });
      this.broker = new Broker({ urls: this.cfg.amqpUrl, logger, publishTimeoutMs: this.cfg.publishTimeoutMs, name: 'postmaster-dlq-cli' });
      let last: string | undefined;
      this.broker.manager.on('connectFailed', ({ err }) => (last = err?.message));
      try {
        await this.broker.waitForConnect(this.connectTimeoutMs);
      } catch {
        throw unreachable(`RabbitMQ at ${maskUrl(this.cfg.amqpUrl)}`, this.connectTimeoutMs, last);
      }
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

/** Prints the answer: pretty JSON with --json, else the text. */
export function emit(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 2) : text()) + '\n');
}
