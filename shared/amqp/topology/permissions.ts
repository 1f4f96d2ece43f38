/**
 * Who may do what on the broker: one RabbitMQ user per service, with configure/write/read regexes
 * derived from the topology declaration (so a renamed prefix, a new tier or another shard count
 * changes the permissions with the objects). scripts/gen-definitions.ts writes them into
 * infra/rabbitmq/definitions.json and infra/k8s/base/rabbitmq-users.yaml.
 *
 * What RabbitMQ checks (3.x, rabbit_channel):
 * - `basic.publish` needs write on the exchange only, never on the queues it routes to. The default
 *   exchange is the resource `amq.default`. Confirms (`confirm.select`) and returns
 *   (`basic.return` of a `mandatory` publish) need nothing more.
 * - `basic.consume` and `basic.get` need read on the queue; `queue.purge` needs read too.
 * - Passive `queue.declare` / `exchange.declare` (`checkQueue`, `checkExchange`: TOPOLOGY_MODE=check
 *   and the replayer's backlog gate) are not permission-checked; only their existence is.
 * - Declaring or deleting needs configure; `queue.bind` needs write on the queue and read on the
 *   exchange (`exchange.bind`: write on the destination, read on the source).
 *
 * Every service may write to `amq.default`: the health probe of shared/amqp/publisher-channel.ts is an
 * unroutable `mandatory` publish there, and the replayer re-queues dead letters at the DLQ's tail
 * through it. Write on the default exchange lets a user publish into any queue by name; it still
 * cannot consume, declare or bind anything it has no right to.
 */
import type { Topology } from './declaration.js';
import { STAGES, type Stage } from './names.js';

export type BrokerRole = 'ingress' | 'dispatcher' | 'sender' | 'dlq-replayer' | 'dlq-cli' | 'topology';

export interface BrokerUser {
  role: BrokerRole;
  /** RabbitMQ user name: `postmaster-<role>`. */
  name: string;
  /** Management UI/API tags: only the topology user sets policies (`policymaker`). */
  tags: string[];
  configure: string;
  write: string;
  read: string;
  /** One line for the docs: what the user is for. */
  purpose: string;
}

/** Matches nothing (RabbitMQ's own idiom for "no permission"). */
export const NOTHING = '^$';
const DEFAULT_EXCHANGE = 'amq.default';

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** An anchored alternation of patterns (names already escaped), in a stable order. */
function oneOf(patterns: string[]): string {
  const unique = [...new Set(patterns)].sort();
  return unique.length === 0 ? NOTHING : `^(${unique.join('|')})$`;
}

export function brokerUserName(role: BrokerRole): string {
  return `postmaster-${role}`;
}

export function brokerUsers(t: Topology): BrokerUser[] {
  const n = t.names;
  const lanes = (stage: Stage) => [n.laneExchange(stage), n.urgent(stage)].map(esc);
  // Any shard number: a resize (SHARDS) needs no new permissions.
  const laneQueues = (stage: Stage) => [`${esc(n.prefix)}\\.${stage}\\.\\d+`, esc(n.urgent(stage))];
  const failures = [...t.options.retryTiersMs.map((ms) => n.retry(ms)), n.dead].map(esc);
  const defaultExchange = esc(DEFAULT_EXCHANGE);
  const user = (role: BrokerRole, purpose: string, p: { write?: string[]; read?: string[] }): BrokerUser => ({
    role,
    name: brokerUserName(role),
    tags: [],
    configure: NOTHING,
    write: p.write ? oneOf(p.write) : NOTHING,
    read: p.read ? oneOf(p.read) : NOTHING,
    purpose,
  });
  // Declaring a binding needs write on its destination and read on its source, so the topology
  // user holds all three rights on the prefix's objects — and `policymaker` for the policies.
  const everything = `^${esc(n.prefix)}\\.`;
  return [
    user('ingress', 'publishes accepted messages and webhooks to the lanes; nothing else', {
      write: [...STAGES.flatMap(lanes), defaultExchange],
    }),
    user('dispatcher', 'consumes the dispatch lanes; publishes to the send lanes, the retry tiers and the dead exchange', {
      write: [...lanes('send'), ...failures, defaultExchange],
      read: laneQueues('dispatch'),
    }),
    user('sender', 'consumes the send lanes; publishes to the retry tiers and the dead exchange', {
      write: [...failures, defaultExchange],
      read: laneQueues('send'),
    }),
    user('dlq-replayer', 'consumes the DLQ; republishes dead letters to the lanes and to the DLQ tail', {
      write: [...STAGES.flatMap(lanes), defaultExchange],
      read: [esc(n.dlq)],
    }),
    user('dlq-cli', 'the postmaster-dlq CLI: reads the DLQ (stats, list, show, dry runs); changes go through signed jobs', {
      read: [esc(n.dlq)],
    }),
    {
      role: 'topology',
      name: brokerUserName('topology'),
      tags: ['policymaker'],
      configure: everything,
      write: everything,
      read: everything,
      purpose: 'declares exchanges, queues, bindings and policies (definitions import or the one-shot topology Job); no service runs as it',
    },
  ];
}
