/**
 * Services as real child processes (for SIGKILL tests): `node dist/services/<name>/main.js` with
 * the environment of a test configuration. The chaos scenarios' spawner (scripts/chaos/processes.ts),
 * with the tests' calling convention: overrides on top of the configuration, ready within 30 s.
 */
import type { Config } from '../../shared/config.js';
import { spawnService as spawn, type ServiceName, type ServiceProcess } from '../../scripts/chaos/processes.js';

export type { ServiceProcess };

export async function spawnService(service: Exclude<ServiceName, 'ingress'>, cfg: Config, overrides: Partial<Config> = {}): Promise<ServiceProcess> {
  const merged = { ...cfg, ...overrides };
  return spawn(service, merged, merged.replicaId, 30_000);
}
