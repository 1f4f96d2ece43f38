/**
 * The topology as data (cf. Rascal's config): exchanges, queues, bindings and policies under the
 * names of names.ts. assert.ts declares it on a broker; scripts/gen-definitions.ts writes it out as
 * infra/rabbitmq/definitions.json. Nothing else builds topology.
 */
import { laneOf, names, STAGES, type Lane, type Names } from './names.js';
import { shardKey } from './shard.js';

export type UrgentQueueType = 'classic' | 'quorum';

export interface TopologyOptions {
  prefix: string;
  shards: number;
  retryTiersMs: number[];
  urgentQueueType: UrgentQueueType;
  /** x-delivery-limit of the quorum shard queues (policy): a message redelivered this often is dead-lettered. */
  deliveryLimit: number;
}

export interface ExchangeDecl {
  name: string;
  type: 'direct' | 'fanout' | 'headers' | 'topic';
  arguments: Record<string, unknown>;
}
export interface QueueDecl {
  name: string;
  /** Arguments that cannot change after declaration (type, SAC, max priority, a tier's TTL). */
  arguments: Record<string, unknown>;
}
export interface BindingDecl {
  source: string;
  destination: string;
  destinationType: 'queue' | 'exchange';
  routingKey: string;
  arguments: Record<string, unknown>;
}
/** Operator-tunable arguments, changeable in the management UI without redeclaring queues. */
export interface PolicyDecl {
  name: string;
  pattern: string;
  applyTo: 'queues' | 'exchanges' | 'all';
  priority: number;
  definition: Record<string, unknown>;
}

export interface Topology {
  options: TopologyOptions;
  names: Names;
  exchanges: ExchangeDecl[];
  queues: QueueDecl[];
  bindings: BindingDecl[];
  policies: PolicyDecl[];
}

/**
 * Header that the retry return exchange routes on. Not `x-`-prefixed on purpose: RabbitMQ's headers
 * exchange ignores headers beginning with `x-` when matching, so a binding on `x-postmaster-lane`
 * would match every message and copy each retried message into every lane.
 */
export const LANE_HEADER = 'postmaster-lane';
/**
 * x-delivery-limit of the DLQ (policy `<prefix>.dlq`). Reading the DLQ (`postmaster-dlq stats`,
 * `list`, `show`, a job's pre-scan) consumes without acking and lets the broker take every message
 * back, which counts as a delivery. RabbitMQ 4.x gives a quorum queue without a limit a default of
 * 20 and drops (the DLQ dead-letters nowhere) a message handed out more often: the twenty-first read
 * would empty the DLQ. A limit no read count reaches keeps 3.x's behaviour on both (3.x refuses -1,
 * 4.x's "no limit", in a policy).
 */
export const DLQ_DELIVERY_LIMIT = 1_000_000;
/** Highest priority of the urgent lane (classic x-max-priority). */
export const URGENT_MAX_PRIORITY = 9;

const quorum = { 'x-queue-type': 'quorum' } as const;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function buildTopology(options: TopologyOptions): Topology {
  const n = names(options.prefix);
  const exchanges: ExchangeDecl[] = [];
  const queues: QueueDecl[] = [];
  const bindings: BindingDecl[] = [];
  const toQueue = (source: string, destination: string, routingKey = '', args = {}) =>
    bindings.push({ source, destination, destinationType: 'queue', routingKey, arguments: args });

  exchanges.push({ name: n.retryReturn, type: 'headers', arguments: {} });
  for (const stage of STAGES) {
    const lane = n.laneExchange(stage);
    // The publisher picks the shard (shard.ts) and routes by its key: durable bindings, no ring.
    exchanges.push({ name: lane, type: 'direct', arguments: {} });
    for (let i = 0; i < options.shards; i++) {
      const q = n.shardQueue(stage, i);
      queues.push({ name: q, arguments: { ...quorum, 'x-single-active-consumer': true } });
      toQueue(lane, q, shardKey(i));
    }
    const urgent = n.urgent(stage);
    exchanges.push({ name: urgent, type: 'fanout', arguments: {} });
    queues.push({
      name: urgent,
      arguments: options.urgentQueueType === 'classic' ? { 'x-queue-type': 'classic', 'x-max-priority': URGENT_MAX_PRIORITY } : { ...quorum },
    });
    toQueue(urgent, urgent);
    for (const kind of ['ordered', 'urgent'] as const) {
      const target: Lane = laneOf(stage, kind);
      bindings.push({
        source: n.retryReturn,
        destination: n.exchangeForLane(target),
        destinationType: 'exchange',
        routingKey: '',
        arguments: { 'x-match': 'all', [LANE_HEADER]: target },
      });
    }
  }
  for (const ms of options.retryTiersMs) {
    const tier = n.retry(ms);
    exchanges.push({ name: tier, type: 'fanout', arguments: {} });
    // A tier's delay is its identity (its name says it), so its TTL is declared, not a policy:
    // without it the tier would hold messages forever. Queue-level TTL only: every message in a
    // tier expires in arrival order, which a per-message TTL would not guarantee.
    queues.push({
      name: tier,
      arguments: {
        ...quorum,
        'x-message-ttl': ms,
        'x-dead-letter-exchange': n.retryReturn,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
    toQueue(tier, tier);
  }
  exchanges.push({ name: n.dead, type: 'fanout', arguments: {} });
  queues.push({ name: n.dlq, arguments: { ...quorum } });
  toQueue(n.dead, n.dlq);

  const p = escapeRe(options.prefix);
  const policies: PolicyDecl[] = [
    {
      name: `${options.prefix}.shards`,
      pattern: n.shardPattern(),
      applyTo: 'queues',
      priority: 10,
      definition: {
        'delivery-limit': options.deliveryLimit,
        'dead-letter-exchange': n.dead,
        'dead-letter-strategy': 'at-least-once',
        overflow: 'reject-publish',
      },
    },
    {
      name: `${options.prefix}.urgent`,
      pattern: `^${p}\\.(${STAGES.join('|')})\\.urgent$`,
      applyTo: 'queues',
      priority: 10,
      definition:
        options.urgentQueueType === 'quorum'
          ? {
              'delivery-limit': options.deliveryLimit,
              'dead-letter-exchange': n.dead,
              'dead-letter-strategy': 'at-least-once',
              overflow: 'reject-publish',
            }
          : { 'dead-letter-exchange': n.dead },
    },
    {
      name: `${options.prefix}.dlq`,
      pattern: `^${escapeRe(n.dlq)}$`,
      applyTo: 'queues',
      priority: 10,
      definition: { 'delivery-limit': DLQ_DELIVERY_LIMIT },
    },
  ];
  return { options, names: n, exchanges, queues, bindings, policies };
}
