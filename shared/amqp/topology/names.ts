/**
 * The one place that spells queue and exchange names (cf. BullMQ's queue-keys.ts).
 * Every service, the CLI, the tests and the definitions generator ask here.
 */
export const STAGES = ['dispatch', 'send'] as const;
export type Stage = (typeof STAGES)[number];

/** A lane is where a message waits for a stage: the ordered shards or the urgent priority queue. */
export type LaneKind = 'ordered' | 'urgent';
export type Lane = `${Stage}` | `${Stage}.urgent`;

export function laneOf(stage: Stage, kind: LaneKind): Lane {
  return kind === 'urgent' ? `${stage}.urgent` : stage;
}

export function parseLane(lane: string): { stage: Stage; kind: LaneKind } | null {
  const [stage, part, ...rest] = lane.split('.');
  if (rest.length > 0 || !(STAGES as readonly string[]).includes(stage)) return null;
  if (part === undefined) return { stage: stage as Stage, kind: 'ordered' };
  return part === 'urgent' ? { stage: stage as Stage, kind: 'urgent' } : null;
}

/** "1s", "2m", "500ms", "1h" — the suffix of a retry tier's name. */
export function tierLabel(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export interface Names {
  prefix: string;
  /** Direct exchange of a stage's ordered lane: each shard queue bound under its shard key (shard.ts). */
  laneExchange(stage: Stage): string;
  /**
   * The ordered lane's exchange before publisher-side sharding (an x-consistent-hash exchange): a
   * dead letter from before the upgrade names it as its origin, and is replayed to laneExchange.
   */
  legacyLaneExchange(stage: Stage): string;
  /** Exchange + queue of a stage's urgent lane (same name). */
  urgent(stage: Stage): string;
  /** Exchange a message is published to for a lane. */
  exchangeForLane(lane: Lane): string;
  shardQueue(stage: Stage, shard: number): string;
  shardPattern(): string;
  retry(tierMs: number): string;
  retryReturn: string;
  dead: string;
  dlq: string;
  /** Prefix of every Redis key of this topology (under the configured Redis key prefix). */
  redisScope: string;
}

export function names(prefix: string): Names {
  const esc = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    prefix,
    laneExchange: (stage) => `${prefix}.${stage}.shards`,
    legacyLaneExchange: (stage) => `${prefix}.${stage}`,
    urgent: (stage) => `${prefix}.${stage}.urgent`,
    exchangeForLane: (lane) => (lane.endsWith('.urgent') ? `${prefix}.${lane}` : `${prefix}.${lane}.shards`),
    shardQueue: (stage, shard) => `${prefix}.${stage}.${String(shard).padStart(2, '0')}`,
    shardPattern: () => `^${esc}\\.(${STAGES.join('|')})\\.\\d+$`,
    retry: (tierMs) => `${prefix}.retry.${tierLabel(tierMs)}`,
    retryReturn: `${prefix}.retry.return`,
    dead: `${prefix}.dead`,
    dlq: `${prefix}.dlq`,
    redisScope: prefix,
  };
}
