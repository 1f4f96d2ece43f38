/**
 * Publishing an envelope into a stage: urgent messages to the stage's priority queue, the rest to
 * the user's shard queue, which the publisher picks (topology/shard.ts), so every message of a user
 * lands on one shard whatever the broker's state.
 */
import type { Broker, PublishArgs } from './broker.js';
import { H, type Envelope } from '../domain/envelope.js';
import type { Metrics } from '../platform/metrics.js';
import type { Topology } from './topology/declaration.js';
import { laneOf, parseLane, type Lane, type Stage } from './topology/names.js';
import { shardKey, shardOf } from './topology/shard.js';

export const DEFAULT_URGENCY = 5;

export function laneFor(stage: Stage, env: Pick<Envelope, 'priority'>): Lane {
  return laneOf(stage, env.priority === 'urgent' ? 'urgent' : 'ordered');
}

/**
 * The routing key of a user's message on a lane: its shard's key on an ordered lane (direct
 * exchange), the user on an urgent lane (fanout: the key only travels along, into retries).
 */
export function routingKeyFor(topology: Pick<Topology, 'options'>, lane: Lane, user: string): string {
  return parseLane(lane)?.kind === 'ordered' ? shardKey(shardOf(user, topology.options.shards)) : user;
}

export interface StagePublisher {
  broker: Broker;
  topology: Topology;
  metrics: Metrics;
}

/** The broker publish of an envelope into a stage: its lane's exchange, its routing key and the lanes' headers. */
export function stagePublishArgs(topology: Topology, stage: Stage, env: Envelope, extraHeaders: Record<string, unknown> = {}): PublishArgs & { lane: Lane } {
  const lane = laneFor(stage, env);
  return {
    lane,
    exchange: topology.names.exchangeForLane(lane),
    routingKey: routingKeyFor(topology, lane, env.user),
    body: Buffer.from(JSON.stringify(env)),
    messageId: env.id,
    correlationId: env.correlationId,
    priority: env.priority === 'urgent' ? (env.urgency ?? DEFAULT_URGENCY) : undefined,
    urgent: env.priority === 'urgent',
    headers: {
      [H.lane]: lane,
      [H.stage]: stage,
      [H.user]: env.user,
      [H.attempt]: env.attempt,
      [H.acceptedAt]: Date.parse(env.createdAt),
      ...extraHeaders,
    },
  };
}

export async function publishToStage(p: StagePublisher, stage: Stage, env: Envelope, extraHeaders: Record<string, unknown> = {}): Promise<Lane> {
  const { lane, ...args } = stagePublishArgs(p.topology, stage, env, extraHeaders);
  await p.broker.publish(args);
  p.metrics.published.inc({ exchange: args.exchange });
  return lane;
}
