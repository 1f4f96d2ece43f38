/**
 * Which lane an exchange or queue name belongs to, asked of the topology's one naming module. A
 * replay only ever publishes to a lane exchange of this topology: a header that names anything else
 * (another prefix, a typo, a crafted message) makes the dead letter unroutable, never a publish to
 * an arbitrary exchange.
 */
import { laneOf, STAGES, type Lane, type Names, type Stage } from '../../shared/amqp/topology/names.js';
import { parseShardKey, shardKey, shardOf } from '../../shared/amqp/topology/shard.js';

export interface LaneRef {
  stage: Stage;
  lane: Lane;
  /** The lane's exchange: where a message of the lane is (re)published. */
  exchange: string;
}

export class LaneIndex {
  private readonly exchanges = new Map<string, LaneRef>();
  private readonly shardQueue: RegExp;

  constructor(
    private readonly names: Names,
    private readonly shards: number,
  ) {
    for (const stage of STAGES) {
      for (const kind of ['ordered', 'urgent'] as const) {
        const lane = laneOf(stage, kind);
        const exchange = names.exchangeForLane(lane);
        this.exchanges.set(exchange, { stage, lane, exchange });
      }
      // A dead letter from before publisher-side sharding names the ring exchange: same lane.
      this.exchanges.set(names.legacyLaneExchange(stage), this.exchanges.get(names.laneExchange(stage))!);
    }
    this.shardQueue = new RegExp(names.shardPattern());
  }

  byExchange(exchange: string): LaneRef | null {
    return this.exchanges.get(exchange) ?? null;
  }

  /** A shard queue `<prefix>.<stage>.NN` belongs to the lane exchange `<prefix>.<stage>`; an urgent queue to its own. */
  byQueue(queue: string): LaneRef | null {
    const shard = this.shardQueue.exec(queue);
    if (shard) return this.byExchange(this.names.laneExchange(shard[1] as Stage));
    for (const stage of STAGES) {
      if (queue === this.names.urgent(stage)) return this.byExchange(this.names.urgent(stage));
    }
    return null;
  }

  /**
   * The routing key a dead letter is replayed with: on an ordered lane the shard of its user, as
   * every publisher computes it (so a replay lands beside the user's other messages); a stored key
   * that is no shard key is a user (messages from before publisher-side sharding). On an urgent
   * lane the key only travels along. Null: nothing to route by.
   */
  routingKey(lane: LaneRef, user: string | null, stored: string | null): string | null {
    if (lane.lane !== laneOf(lane.stage, 'ordered')) return user ?? stored;
    if (user) return shardKey(shardOf(user, this.shards));
    if (!stored) return null;
    return parseShardKey(stored, this.shards) === null ? shardKey(shardOf(stored, this.shards)) : stored;
  }

  /** The queues of the live lanes (every shard and urgent queue), whose backlog a replay yields to. */
  liveQueues(shards: number): string[] {
    const out: string[] = [];
    for (const stage of STAGES) {
      for (let i = 0; i < shards; i++) out.push(this.names.shardQueue(stage, i));
      out.push(this.names.urgent(stage));
    }
    return out;
  }
}
