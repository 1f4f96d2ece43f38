/**
 * Delivery counts for queues that keep none. A quorum queue counts the times it handed a message
 * out (`x-delivery-count`), so a message that crashes its consumer reaches DELIVERY_LIMIT and is
 * dead-lettered; a classic queue — the urgent lanes by default, for their ten priority levels —
 * only flags a redelivery, and such a message would be redelivered forever. This counts the
 * redeliveries of those in Redis, per stage and message id: a first delivery costs nothing.
 */
import type { Runtime } from '../amqp/runtime.js';
import type { Stage } from '../amqp/topology/names.js';
import { luaScript, type LuaFn } from '../platform/lua-scripts.js';

/**
 * Long enough to span a whole crash loop: under Kubernetes' restart back-off (up to 5 min between
 * restarts) DELIVERY_LIMIT crashes take tens of minutes. Settled messages delete their count.
 */
const COUNT_TTL_S = 24 * 3600;

const INCREMENT = luaScript({
  name: 'postmasterRedeliveryCount',
  file: new URL('./lua/redelivery-count.lua', import.meta.url),
  keys: ['count'],
  args: ['ttlS'],
});

export class RedeliveryCounter {
  private readonly increment: LuaFn<typeof INCREMENT>;

  constructor(
    private readonly rt: Pick<Runtime, 'redis' | 'keys'>,
    private readonly stage: Stage,
  ) {
    this.increment = INCREMENT.bind(rt.redis);
  }

  private key(id: string): string {
    return this.rt.keys('redeliveries', this.stage, id);
  }

  /** Counts one more redelivery of `id`; the result matches a quorum queue's x-delivery-count (1 on the first redelivery). */
  async count(id: string): Promise<number> {
    return Number(await this.increment({ keys: { count: this.key(id) }, args: { ttlS: COUNT_TTL_S } }));
  }

  /** The message was settled (handled, re-tiered or dead-lettered): a later copy of it starts from 0, as on a quorum queue. */
  async forget(id: string): Promise<void> {
    await this.rt.redis.del(this.key(id));
  }
}
