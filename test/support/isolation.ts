/**
 * Test isolation: every test file gets its own RabbitMQ vhost and Redis key prefix
 * (scripts/lib/isolation.ts), both removed afterwards, and a test configuration in them.
 */
import { loadConfig, type Config } from '../../shared/platform/config.js';
import { Management } from '../../shared/amqp/management.js';
import { createSpace, type Space } from '../../scripts/lib/isolation.js';

export { queueDepths, scanAll } from '../../scripts/lib/isolation.js';

export const AMQP_BASE = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const MGMT_URL = process.env.RABBITMQ_MANAGEMENT_URL || Management.urlFromAmqp(AMQP_BASE);

export interface Isolation extends Space {
  /** Config for a service in this isolation, with test-friendly defaults and overrides. */
  config(overrides?: Partial<Config>): Config;
}

export async function isolate(name: string): Promise<Isolation> {
  const space = await createSpace({ name: `pmtest-${name}`, amqpBase: AMQP_BASE, redisUrl: REDIS_URL, managementUrl: MGMT_URL });
  const config = (overrides: Partial<Config> = {}) =>
    loadConfig(
      {},
      {
        env: 'test',
        amqpUrl: space.amqpUrl,
        redisUrl: REDIS_URL,
        redisKeyPrefix: space.redisKeyPrefix,
        managementUrl: MGMT_URL,
        ingressPort: 0,
        ingressHost: '127.0.0.1',
        metricsPort: 0,
        logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
        shards: 4,
        retryTiers: '200ms,400ms,800ms',
        shutdownGraceMs: 5000,
        leaseTtlMs: 1500,
        whatsappThroughputPerSecond: 0,
        whatsappPairIntervalMs: 0,
        whatsappPairBurst: 0,
        ...overrides,
      },
    );
  return Object.assign(space, { config });
}
