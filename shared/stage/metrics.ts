/**
 * The stage workers' metrics (the dispatcher and the sender): what the stage machinery records —
 * deliveries taken and in flight, retries and dead letters, shards and their leases, strict order's
 * holds, urgent-first — on top of every service's (shared/platform/metrics.ts). Each service adds its
 * own in its folder (services/<name>/metrics.ts).
 */
import { Counter, Gauge } from 'prom-client';
import { Metrics } from '../platform/metrics.js';

/** Declared once for the stage workers and the ingress, which reports its requests as stage="ingress". */
export const IN_FLIGHT = { name: 'postmaster_in_flight', help: 'Deliveries being worked on.', labelNames: ['stage'] } as const;
/** Declared once for the sender (redeliveries of sent messages) and the ingress (webhook repeats). */
export const DUPLICATES_DROPPED = {
  name: 'postmaster_duplicates_dropped_total',
  help: 'Redeliveries or repeats dropped by dedup.',
  labelNames: ['stage'],
} as const;

export class StageMetrics extends Metrics {
  readonly consumed = new Counter({
    name: 'postmaster_consumed_total',
    help: 'Deliveries taken from a lane.',
    labelNames: ['stage', 'lane'],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({ ...IN_FLIGHT, registers: [this.registry] });
  readonly retried = new Counter({
    name: 'postmaster_retried_total',
    help: 'Messages sent to a retry tier.',
    labelNames: ['stage', 'tier', 'class'],
    registers: [this.registry],
  });
  readonly deadLettered = new Counter({
    name: 'postmaster_dead_lettered_total',
    help: 'Messages dead-lettered by class and code.',
    labelNames: ['stage', 'class', 'code'],
    registers: [this.registry],
  });
  readonly shardsOwned = new Gauge({
    name: 'postmaster_shards_owned',
    help: 'Shards this replica consumes.',
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly shardLeasesLost = new Counter({
    name: 'postmaster_shard_leases_lost_total',
    help: 'Shard leases that ran out while this replica held them (it stalled for longer than LEASE_TTL_MS, or Redis did).',
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly heldUsers = new Gauge({
    name: 'postmaster_held_users',
    help: "Users whose ordered lane waits behind a retrying message (strict mode), on this replica's shards.",
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly oldestHoldAge = new Gauge({
    name: 'postmaster_oldest_hold_age_seconds',
    help: "How long the longest-waiting held user (strict mode) of this replica's shards has waited for its current head; 0 without holds.",
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly dlqWaitingUsers = new Gauge({
    name: 'postmaster_dlq_waiting_users',
    help: 'Users whose later messages wait behind a dead letter until it is replayed or purged (DLQ_ORDERING_MODE=strict), fleet-wide: every worker replica reports the same value (use max).',
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly dlqOldestWait = new Gauge({
    name: 'postmaster_dlq_oldest_wait_seconds',
    help: 'How long the longest-waiting user has waited behind a dead letter (DLQ_ORDERING_MODE=strict), fleet-wide (use max); 0 without.',
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly holdsHealed = new Counter({
    name: 'postmaster_holds_healed_total',
    help: "Messages a held user stopped waiting for: lost (its retry copy never came back), sent, dead-lettered, unknown (no status record), expired (the whole hold's TTL ran out).",
    labelNames: ['stage', 'reason'],
    registers: [this.registry],
  });
  readonly urgentHoldSeconds = new Counter({
    name: 'postmaster_urgent_hold_seconds_total',
    help: 'Time this replica held back its ordered lanes because an urgent message was in flight (URGENT_HOLD_MS).',
    labelNames: ['stage'],
    registers: [this.registry],
  });
}
