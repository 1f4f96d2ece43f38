/**
 * Services as real child processes (for SIGKILL tests), through the dev kit's spawner
 * (scripts/lib/processes.ts) with the tests' calling convention: overrides on top of the
 * configuration, ready within 30 s.
 */
import type { Config } from '../../shared/platform/config.js';
import { spawnService as spawn, type ServiceName, type ServiceProcess } from '../../scripts/lib/processes.js';

export type { ServiceProcess };

export async function spawnService(service: Exclude<ServiceName, 'ingress'>, cfg: Config, overrides: Partial<Config> = {}): Promise<ServiceProcess> {
  return spawn(service, { ...cfg, ...overrides }, { readyTimeoutMs: 30_000 });
}
