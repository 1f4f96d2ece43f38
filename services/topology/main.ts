/**
 * The topology job: declares the topology (exchanges, queues, bindings, policies) once and exits: the one place that
 * owns it on a cluster whose services run with TOPOLOGY_MODE=check. Run as the topology user
 * (postmaster-topology: configure rights on the prefix, tag `policymaker`), e.g. by the Kubernetes
 * Job of infra/k8s/base/topology-job.yaml (it is in the image, beside the services):
 *
 *   node dist/services/topology/main.js      AMQP_URL, RABBITMQ_MANAGEMENT_URL, TOPOLOGY_PREFIX, SHARDS, …
 *
 * TOPOLOGY_MODE is ignored: this script always asserts. It needs no Redis. Exit 0 when the topology
 * is in place, 1 with one line naming the object that failed otherwise.
 */
import { pathToFileURL } from 'node:url';
import { Broker } from '../../shared/amqp/broker.js';
import { loadConfig, type Config } from '../../shared/platform/config.js';
import { createLogger } from '../../shared/platform/logger.js';
import { Management } from '../../shared/amqp/management.js';
import { topologyFromConfig, vhostOf } from '../../shared/amqp/runtime.js';
import { assertTopology } from '../../shared/amqp/topology/assert.js';

const CONNECT_TIMEOUT_MS = 30_000;

export async function declareTopology(cfg: Config): Promise<void> {
  const log = createLogger({ level: cfg.logLevel, service: 'topology', replica: 'job' });
  const broker = new Broker({ urls: cfg.amqpUrl, logger: log, publishTimeoutMs: cfg.publishTimeoutMs, name: 'postmaster-topology' });
  try {
    await broker.waitForConnect(CONNECT_TIMEOUT_MS);
    const vhost = vhostOf(cfg.amqpUrl);
    const managementUrl = cfg.managementUrl || Management.urlFromAmqp(cfg.amqpUrl);
    await assertTopology(broker.connection(), topologyFromConfig(cfg), { mode: 'assert', managementUrl, vhost });
    log.info({ prefix: cfg.topologyPrefix, shards: cfg.shards, vhost }, 'topology declared');
  } finally {
    await broker.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    // It holds no secret but its broker user: load as the CLI, the role with none of the services' secrets.
    await declareTopology(loadConfig(process.env, {}, 'cli'));
  } catch (err) {
    console.error(`topology job: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
