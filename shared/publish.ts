/**
 * Publishing an envelope into a stage: urgent messages to the stage's priority queue, the rest to
 * its consistent-hash exchange keyed by the user (so every message of a user lands on one shard).
 */
import type { Broker } from './broker.js';
import { H, type Envelope } from './envelope.js';
import type { Metrics } from './metrics.js';
import type { Topology } from './topology/declaration.js';
import { laneOf, type Lane, type Stage } from './topology/names.js';

export const DEFAULT_URGENCY = 5;

export function laneFor(stage: Stage, env: Pick<Envelope, 'priority'>): Lane {
  return laneOf(stage, env.priority === 'urgent' ? 'urgent' : 'ordered');
}

export interface StagePublisher {
  broker: Broker;
  topology: Topology;
  metrics: Metrics;
}

export async function publishToStage(
  p: StagePublisher,
  stage: Stage,
  env: Envelope,
  extraHeaders: Record<string, unknown> = {},
): Promise<Lane> {
  const lane = laneFor(stage, env);
  const exchange = p.topology.names.exchangeForLane(lane);
  await p.broker.publish({
    exchange,
    routingKey: env.user,
    body: Buffer.from(JSON.stringify(env)),
    messageId: env.id,
    correlationId: env.correlationId,
    priority: env.priority === 'urgent' ? (env.urgency ?? DEFAULT_URGENCY) : undefined,
    urgent: env.priority === 'urgent',
    headers: {
      [H.lane]: lane,
      [H.stage]: stage,
      [H.attempt]: env.attempt,
      [H.acceptedAt]: Date.parse(env.createdAt),
      ...extraHeaders,
    },
  });
  p.metrics.published.inc({ exchange });
  return lane;
}
