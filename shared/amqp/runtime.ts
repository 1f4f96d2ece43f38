/**
 * What every service starts with: config, logger, metrics, broker, Redis, topology — and the order
 * in which they close. Here, not in shared/platform/, because it connects the broker and asserts the
 * topology; what the platform and domain layers take of it is typed there (RedisContext).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Broker } from './broker.js';
import { describeConfig, parseTiers, unsafeSettings, type Config } from '../platform/config.js';
import { roleOf } from '../platform/production-policy.js';
import { createLogger, logOutages, type Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import { createRedis, keyspace, redisDeadlines, type Keyspace } from '../platform/redis.js';
import { assertTopology } from './topology/assert.js';
import { buildTopology, type Topology } from './topology/declaration.js';
import { Management } from './management.js';
import { processReplicaId } from '../platform/replica.js';
import { Health } from '../platform/health.js';

/** A service's runtime; `M` is its metrics (a subclass of Metrics: services/<name>/metrics.ts). */
export interface Runtime<M extends Metrics = Metrics> {
  cfg: Config;
  service: string;
  replicaId: string;
  log: Logger;
  metrics: M;
  broker: Broker;
  redis: Redis;
  keys: Keyspace;
  topology: Topology;
  vhost: string;
  managementUrl: string;
  /** Readiness and liveness; the broker's checks are in, services add their own. */
  health: Health;
  close(): Promise<void>;
}

/** The checks every service shares: the broker connection and whether publishing works. */
export function brokerChecks(health: Health, broker: Broker): Health {
  return health
    .add('broker', () => (broker.connected() && broker.connected(true) ? null : 'RabbitMQ connection down'))
    .add('publish', () => {
      const since = broker.publishFailingSince();
      if (since !== null) broker.probePublishing();
      return since === null ? null : `publishes failing since ${new Date(since).toISOString()}: ${broker.lastPublishFailure() ?? ''}`;
    });
}

export function topologyFromConfig(cfg: Config): Topology {
  return buildTopology({
    prefix: cfg.topologyPrefix,
    shards: cfg.shards,
    retryTiersMs: parseTiers(cfg.retryTiers),
    urgentQueueType: cfg.urgentQueueType as 'classic' | 'quorum',
    deliveryLimit: cfg.deliveryLimit,
  });
}

export function vhostOf(amqpUrl: string): string {
  const path = new URL(amqpUrl.split(',')[0].trim()).pathname;
  return path && path !== '/' ? decodeURIComponent(path.slice(1)) : '/';
}

export interface RuntimeOptions<M extends Metrics> {
  service: string;
  /** The service's metrics class, made with the service's name. */
  metrics: new (service: string) => M;
  logger?: Logger;
  /** Assert the topology before resolving (the ingress and workers do; the CLI does not). */
  assert?: boolean;
  connectTimeoutMs?: number;
}

/**
 * POSTMASTER_ALLOW_INSECURE=1 in production: says so at warn level, once per unsafe setting it let
 * through (loadConfig would have refused each), so the escape hatch never goes unnoticed in the logs.
 */
function warnIfInsecure(cfg: Config, service: string, log: Logger): void {
  if (cfg.env !== 'production' || cfg.allowInsecure !== '1') return;
  const waived = unsafeSettings(cfg, roleOf(service));
  log.warn({ insecure: true, waived: waived.length }, 'POSTMASTER_ALLOW_INSECURE=1: production checks are off; for local clusters only, never on the internet');
  for (const w of waived) log.warn({ insecure: true }, `POSTMASTER_ALLOW_INSECURE=1 let through: ${w}`);
}

export async function createRuntime<M extends Metrics>(cfg: Config, opts: RuntimeOptions<M>): Promise<Runtime<M>> {
  // The random part keeps two runtimes of one process (tests) apart in shard membership.
  const replicaId = cfg.replicaId || `${processReplicaId()}-${randomBytes(3).toString('hex')}`;
  const log = opts.logger ?? createLogger({ level: cfg.logLevel, service: opts.service, replica: replicaId });
  log.info({ config: describeConfig(cfg) }, 'starting');
  warnIfInsecure(cfg, opts.service, log);
  const metrics = new opts.metrics(opts.service);
  const broker = new Broker({
    urls: cfg.amqpUrl,
    logger: log,
    publishTimeoutMs: cfg.publishTimeoutMs,
    name: `postmaster-${opts.service}`,
    replica: replicaId,
    urgentConnection: true,
    onReturned: (exchange) => metrics.unroutable.inc({ exchange }),
  });
  const redis = createRedis(cfg, redisDeadlines(cfg));
  // One error per reconnect attempt while Redis is away: a line when the outage begins, one a minute while it lasts, one when it is over.
  logOutages(log, 'redis', redis, redis);
  const health = brokerChecks(new Health(metrics, { stuckAfterMs: cfg.healthStuckAfterMs, loopBlockedMs: cfg.eventLoopBlockedMs }), broker).start();
  const topology = topologyFromConfig(cfg);
  const vhost = vhostOf(cfg.amqpUrl);
  const managementUrl = cfg.managementUrl || Management.urlFromAmqp(cfg.amqpUrl);
  let closing: Promise<void> | null = null;
  const rt: Runtime<M> = {
    cfg,
    service: opts.service,
    replicaId,
    log,
    metrics,
    broker,
    redis,
    keys: keyspace(cfg.redisKeyPrefix, cfg.topologyPrefix),
    topology,
    vhost,
    managementUrl,
    health,
    close: () =>
      (closing ??= (async () => {
        health.close();
        await broker.close().catch(() => {});
        await redis.quit().catch(() => redis.disconnect());
      })()),
  };
  try {
    await broker.waitForConnect(opts.connectTimeoutMs ?? 15_000);
    if (opts.assert !== false) {
      await assertTopology(broker.connection(), topology, { mode: cfg.topologyMode as 'assert' | 'check', managementUrl, vhost });
      log.info({ prefix: cfg.topologyPrefix, shards: cfg.shards, vhost }, 'topology in place');
    }
  } catch (err) {
    await rt.close();
    throw err;
  }
  return rt;
}
