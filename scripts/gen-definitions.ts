/**
 * Writes infra/rabbitmq/definitions.json from the one topology declaration
 * (shared/amqp/topology/declaration.ts), so a cluster can be provisioned with `load_definitions` or the
 * management UI's import and end up with exactly what the services would assert — plus one broker
 * user per service and its permissions (shared/amqp/topology/permissions.ts), and from the same users
 * infra/rabbitmq/local-users.json (dev passwords) and infra/k8s/base/rabbitmq-users.yaml
 * (scripts/broker-users.ts).
 *
 *   npm run gen:definitions                     rewrite the file (config defaults: prefix postmaster,
 *                                               16 shards, tiers 1s,5s,30s,2m,10m, classic urgent lanes)
 *   node dist/scripts/gen-definitions.js --check      exit 1 if the file differs from the declaration
 *   node dist/scripts/gen-definitions.js --from-env --stdout   definitions for this environment's
 *                                               TOPOLOGY_PREFIX/SHARDS/RETRY_TIERS/… (e.g. a resize)
 *
 * The committed file is generated from the defaults, never from whoever's environment ran the script.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../shared/platform/config.js';
import { topologyFromConfig, vhostOf } from '../shared/amqp/runtime.js';
import type { Topology } from '../shared/amqp/topology/declaration.js';
import {
  K8S_USERS_PATH,
  LOCAL_USERS_PATH,
  renderK8sUsers,
  renderLocalUsers,
  userDefinitions,
  type DefinitionsPermission,
  type DefinitionsUser,
} from './broker-users.js';

/** The part of a definitions file that POST /api/definitions/<vhost> accepts: no vhost fields. */
export interface VhostDefinitions {
  exchanges: Array<{ name: string; type: string; durable: boolean; auto_delete: boolean; internal: boolean; arguments: Record<string, unknown> }>;
  queues: Array<{ name: string; durable: boolean; auto_delete: boolean; arguments: Record<string, unknown> }>;
  bindings: Array<{ source: string; destination: string; destination_type: string; routing_key: string; arguments: Record<string, unknown> }>;
  policies: Array<{ name: string; pattern: string; 'apply-to': string; definition: Record<string, unknown>; priority: number }>;
}

/** A cluster-wide definitions file: the vhost itself plus every object, each naming its vhost. */
export interface Definitions {
  /** One user per service, without a password (an empty hash: no password login until one is set). */
  users: DefinitionsUser[];
  vhosts: Array<{ name: string }>;
  permissions: DefinitionsPermission[];
  exchanges: Array<VhostDefinitions['exchanges'][number] & { vhost: string }>;
  queues: Array<VhostDefinitions['queues'][number] & { vhost: string }>;
  bindings: Array<VhostDefinitions['bindings'][number] & { vhost: string }>;
  policies: Array<VhostDefinitions['policies'][number] & { vhost: string }>;
}

export const DEFINITIONS_PATH = 'infra/rabbitmq/definitions.json';

/** Same objects and flags as assertTopology declares (durable, not auto-deleted, not internal). */
export function vhostDefinitions(t: Topology): VhostDefinitions {
  return {
    exchanges: t.exchanges.map((e) => ({ name: e.name, type: e.type, durable: true, auto_delete: false, internal: false, arguments: e.arguments })),
    queues: t.queues.map((q) => ({ name: q.name, durable: true, auto_delete: false, arguments: q.arguments })),
    bindings: t.bindings.map((b) => ({
      source: b.source,
      destination: b.destination,
      destination_type: b.destinationType,
      routing_key: b.routingKey,
      arguments: b.arguments,
    })),
    policies: t.policies.map((p) => ({ name: p.name, pattern: p.pattern, 'apply-to': p.applyTo, definition: p.definition, priority: p.priority })),
  };
}

/**
 * Users come without passwords: passwords are secrets and differ per cluster. Importing this file
 * (re)sets each user's password to "none", so whoever imports it sets the passwords afterwards:
 * docker-compose.yml imports infra/rabbitmq/local-users.json after it (a node that imports
 * definitions at boot does not seed its default user either).
 */
export function definitions(t: Topology, vhost = '/'): Definitions {
  const v = vhostDefinitions(t);
  const { users, permissions } = userDefinitions(t, vhost);
  return {
    users,
    vhosts: [{ name: vhost }],
    permissions,
    // vhost second, as RabbitMQ's own export writes it, so the file reads like one.
    exchanges: v.exchanges.map(({ name, ...x }) => ({ name, vhost, ...x })),
    queues: v.queues.map(({ name, ...x }) => ({ name, vhost, ...x })),
    bindings: v.bindings.map(({ source, ...x }) => ({ source, vhost, ...x })),
    policies: v.policies.map((x) => ({ vhost, ...x })),
  };
}

/** The committed file's content: config defaults only, so the output never depends on the caller's env. */
export function renderDefinitions(env: NodeJS.ProcessEnv = {}): string {
  return renderAll(env)[DEFINITIONS_PATH];
}

/** Every generated file by its path in the repository. */
export function renderAll(env: NodeJS.ProcessEnv = {}): Record<string, string> {
  const cfg = loadConfig(env);
  const t = topologyFromConfig(cfg);
  const vhost = vhostOf(cfg.amqpUrl);
  return {
    [DEFINITIONS_PATH]: JSON.stringify(definitions(t, vhost), null, 2) + '\n',
    [LOCAL_USERS_PATH]: renderLocalUsers(t, vhost),
    [K8S_USERS_PATH]: renderK8sUsers(t, vhost),
  };
}

/** Strips the vhost fields of a cluster-wide file, for POST /api/definitions/<vhost>. */
export function scopeToVhost(d: Definitions): VhostDefinitions {
  const drop = <T extends { vhost: string }>({ vhost: _vhost, ...rest }: T) => rest;
  // Users and permissions are cluster-wide objects: a vhost import carries neither.
  return { exchanges: d.exchanges.map(drop), queues: d.queues.map(drop), bindings: d.bindings.map(drop), policies: d.policies.map(drop) };
}

function repoRoot(): string {
  // dist/scripts/gen-definitions.js → repository root
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

function main(argv: string[]): number {
  const files = renderAll(argv.includes('--from-env') ? process.env : {});
  if (argv.includes('--stdout')) {
    process.stdout.write(files[DEFINITIONS_PATH]);
    return 0;
  }
  if (argv.includes('--check')) {
    const stale = Object.keys(files).filter((rel) => {
      try {
        return readFileSync(path.join(repoRoot(), rel), 'utf8') !== files[rel];
      } catch {
        return true; // missing counts as drift
      }
    });
    if (stale.length === 0) return 0;
    console.error(`${stale.join(', ')} out of date with shared/amqp/topology; run "npm run gen:definitions" and commit the result.`);
    return 1;
  }
  for (const [rel, text] of Object.entries(files)) {
    writeFileSync(path.join(repoRoot(), rel), text);
    console.error(`wrote ${rel}`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
