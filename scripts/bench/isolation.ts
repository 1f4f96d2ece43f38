/**
 * A benchmark run's own namespace (scripts/lib/isolation.ts) with a production-like configuration,
 * removed afterwards even when the run failed. Everything targets 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../shared/platform/config.js';
import { Management } from '../../shared/amqp/management.js';
import { createSpace as createNamespace, type Space } from '../lib/isolation.js';

// PMBENCH_AMQP_URL / PMBENCH_MANAGEMENT_URL: bench another node on this machine (one configured
// differently, e.g. a private node started with its own rabbitmq.conf) instead of the machine's own.
export const AMQP_BASE = process.env.PMBENCH_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = 'redis://127.0.0.1:6379';
export const MGMT_URL = process.env.PMBENCH_MANAGEMENT_URL || Management.urlFromAmqp(AMQP_BASE);

export interface BenchSpace extends Space {
  /** Production-like service configuration in this namespace (secrets set, NODE_ENV=production). */
  config(overrides?: Partial<Config>): Config;
}

/**
 * Secrets of this run only: production mode refuses the development defaults and short secrets. It
 * also refuses the bundled simulator (plain http) and the echo bot, which the bench uses on purpose:
 * POSTMASTER_ALLOW_INSECURE lets it start (each service logs what it let through).
 */
function runSecrets(): Partial<Config> {
  const s = () => randomBytes(32).toString('hex');
  return { ingressApiToken: s(), whatsappAppSecret: s(), whatsappVerifyToken: s(), whatsappAccessToken: s(), botHandlerToken: s(), allowInsecure: '1' };
}

export async function createSpace(): Promise<BenchSpace> {
  const space = await createNamespace({ name: `pmbench-${Date.now().toString(36)}`, amqpBase: AMQP_BASE, redisUrl: REDIS_URL, managementUrl: MGMT_URL });
  const secrets = runSecrets();
  // The caller's environment tunes the fleet (SHARDS, SHARD_PREFETCH, …: the bench measures the
  // configuration it is given); where the run's vhost, Redis prefix and limits come from is fixed.
  const config = (overrides: Partial<Config> = {}) =>
    loadConfig(process.env, {
      env: 'production',
      amqpUrl: space.amqpUrl,
      redisUrl: REDIS_URL,
      redisKeyPrefix: space.redisKeyPrefix,
      managementUrl: MGMT_URL,
      ingressHost: '127.0.0.1',
      logLevel: 'warn',
      whatsappThroughputPerSecond: 0,
      whatsappPairIntervalMs: 0,
      ...secrets,
      ...overrides,
    });
  return Object.assign(space, { config });
}
