/**
 * The Redis keys of strict order's holds (hold-scripts.ts says what each holds), in one place for
 * the stage workers, the dlq-replayer and the CLI.
 */
import type { Keyspace } from '../platform/redis.js';
import type { Stage } from '../amqp/topology/names.js';

export interface HoldKeys {
  /** The user's hold: ids in order, the head first. */
  list(user: string): string;
  /** id → due-back ms, plus `:since` and `:shard`. */
  back(user: string): string;
  /** The held users of one shard. */
  shard(shard: number): string;
  /** Users whose head is a dead letter (DLQ_ORDERING_MODE=strict), scored by since when. */
  waiting: string;
}

export function holdKeys(keys: Keyspace, stage: Stage): HoldKeys {
  return {
    list: (user) => keys('hold', stage, user),
    back: (user) => keys('hold', stage, user, 'back'),
    shard: (shard) => keys('holds', stage, shard),
    waiting: keys('dlq-waiting', stage),
  };
}
