/**
 * Writes infra/rabbitmq/definitions.json from the one topology declaration
 * (shared/topology/declaration.ts), so a cluster can be provisioned with `load_definitions` or the
 * management UI's import and end up with exactly what the services would assert.
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
import { loadConfig } from '../shared/config.js';
import { topologyFromConfig, vhostOf } from '../shared/runtime.js';
import type { Topology } from '../shared/topology/declaration.js';

/** The part of a definitions file that POST /api/definitions/<vhost> accepts: no vhost fields. */
export interface VhostDefinitions {
  exchanges: Array<{ name: string; type: string; durable: boolean; auto_delete: boolean; internal: boolean; arguments: Record<string, unknown> }>;
  queues: Array<{ name: string; durable: boolean; auto_delete: boolean; arguments: Record<string, unknown> }>;
  bindings: Array<{ source: string; destination: string; destination_type: string; routing_key: string; arguments: Record<string, unknown> }>;
  policies: Array<{ name: string; pattern: string; 'apply-to': string; definition: Record<string, unknown>; priority: number }>;
}

/** A cluster-wide definitions file: the vhost itself plus every object, each naming its vhost. */
export interface Definitions {
  vhosts: Array<{ name: string }>;
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
 * Users and permissions are deliberately absent: they are secrets and differ per cluster. A node that
 * imports definitions at boot does not seed its default user, so boot-time import needs a users file
 * beside this one (docker-compose.yml mounts infra/rabbitmq/local-users.json for the local stack).
 */
export function definitions(t: Topology, vhost = '/'): Definitions {
  const v = vhostDefinitions(t);
  return {
    vhosts: [{ name: vhost }],
    // vhost second, as RabbitMQ's own export writes it, so the file reads like one.
    exchanges: v.exchanges.map(({ name, ...x }) => ({ name, vhost, ...x })),
    queues: v.queues.map(({ name, ...x }) => ({ name, vhost, ...x })),
    bindings: v.bindings.map(({ source, ...x }) => ({ source, vhost, ...x })),
    policies: v.policies.map((x) => ({ vhost, ...x })),
  };
}

/** The committed file's content: config defaults only, so the output never depends on the caller's env. */
export function renderDefinitions(env: NodeJS.ProcessEnv = {}): string {
  const cfg = loadConfig(env);
  return JSON.stringify(definitions(topologyFromConfig(cfg), vhostOf(cfg.amqpUrl)), null, 2) + '\n';
}

/** Strips the vhost fields of a cluster-wide file, for POST /api/definitions/<vhost>. */
export function scopeToVhost(d: Definitions): VhostDefinitions {
  const drop = <T extends { vhost: string }>({ vhost: _vhost, ...rest }: T) => rest;
  return { exchanges: d.exchanges.map(drop), queues: d.queues.map(drop), bindings: d.bindings.map(drop), policies: d.policies.map(drop) };
}

function repoRoot(): string {
  // dist/scripts/gen-definitions.js → repository root
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

function main(argv: string[]): number {
  const target = path.join(repoRoot(), DEFINITIONS_PATH);
  const wanted = renderDefinitions(argv.includes('--from-env') ? process.env : {});
  if (argv.includes('--stdout')) {
    process.stdout.write(wanted);
    return 0;
  }
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // missing counts as drift
    }
    if (current === wanted) return 0;
    console.error(`${DEFINITIONS_PATH} is out of date with shared/topology; run "npm run gen:definitions" and commit the result.`);
    return 1;
  }
  writeFileSync(target, wanted);
  console.error(`wrote ${DEFINITIONS_PATH}`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
