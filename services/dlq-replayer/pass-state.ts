/**
 * What a job's pass has done, in Redis, so that a pass resumed after a crash neither loses nor
 * repeats anything:
 *
 * - `done`: keys of dead letters this pass replayed (or purged). Written after the broker confirmed
 *   the republish and before the DLQ copy is acked; checked before republishing. A dead letter that
 *   was republished but not acked when the replayer died comes back to the pass, is found here, and
 *   is acked without a second republish.
 * - `kept`: keys of dead letters moved to the DLQ's tail, the same way (a kept dead letter whose
 *   copy is already at the tail is acked, not copied twice).
 * - `state`: the pass id, the snapshot size and the counters (written in the same Lua call as the
 *   set, so they never drift from the sets).
 * - `cancel`: set by `jobs cancel`.
 *
 * The window that remains: the replayer dying between the broker's confirm and the set write makes
 * the resumed pass republish that one message again (the sender's per-id dedup then drops it).
 */
import type { Redis } from 'ioredis';
import { luaScript, type LuaFn } from '../../shared/platform/lua-scripts.js';
import type { Keyspace } from '../../shared/platform/redis.js';

export const COUNTERS = ['total', 'scanned', 'matched', 'replayed', 'purged', 'kept', 'unroutable', 'duplicates'] as const;
export type Counter = (typeof COUNTERS)[number];
export type PassCounters = Record<Counter, number>;

export interface PassRecord extends PassCounters {
  /** Set once the pass's marker is in the DLQ. */
  passId: string | null;
  /** The pass reached its marker (or found it gone). */
  finished: boolean;
  /** A job whose unfinished pass this job took over (and finishes before its own). */
  orphan: string | null;
}

/** How long a finished job's sets are kept (a late `jobs status` still has its counters). */
const KEEP_S = 7 * 24 * 3600;

const COMMIT = luaScript({
  name: 'postmasterDlqPassCommit',
  file: new URL('./lua/pass-commit.lua', import.meta.url),
  keys: ['set', 'state'],
  args: ['key'],
  each: { args: ['counter'] },
});

export function emptyCounters(): PassCounters {
  return Object.fromEntries(COUNTERS.map((c) => [c, 0])) as PassCounters;
}

export class PassState {
  private readonly stateKey: string;
  private readonly doneKey: string;
  private readonly keptKey: string;
  readonly cancelKey: string;
  private readonly commitScript: LuaFn<typeof COMMIT>;

  constructor(
    private readonly redis: Redis,
    keys: Keyspace,
    readonly jobId: string,
  ) {
    this.stateKey = keys('dlq', 'job', jobId, 'state');
    this.doneKey = keys('dlq', 'job', jobId, 'done');
    this.keptKey = keys('dlq', 'job', jobId, 'kept');
    this.cancelKey = keys('dlq', 'job', jobId, 'cancel');
    this.commitScript = COMMIT.bind(redis);
  }

  async load(): Promise<PassRecord> {
    const h = await this.redis.hgetall(this.stateKey);
    const counters = emptyCounters();
    for (const c of COUNTERS) counters[c] = Number(h[c] ?? 0);
    return { ...counters, passId: h.passId || null, finished: h.finished === '1', orphan: h.orphan || null };
  }

  async begin(passId: string, total: number): Promise<void> {
    await this.redis.hset(this.stateKey, { passId, total });
  }

  async adopt(orphanJobId: string): Promise<void> {
    await this.redis.hset(this.stateKey, 'orphan', orphanJobId);
  }

  /** Whether this pass already handled the dead letter: replayed/purged ('done') or moved ('kept'). */
  async seen(key: string): Promise<'done' | 'kept' | null> {
    const r = await this.redis.multi().sismember(this.doneKey, key).sismember(this.keptKey, key).exec();
    if (!r) throw new Error('redis transaction aborted');
    if (Number(r[0][1]) === 1) return 'done';
    return Number(r[1][1]) === 1 ? 'kept' : null;
  }

  /** Records a handled dead letter and bumps its counters; false if it was recorded already. */
  async commit(set: 'done' | 'kept', key: string, counters: Counter[]): Promise<boolean> {
    const k = set === 'done' ? this.doneKey : this.keptKey;
    const each = counters.map((counter) => ({ args: { counter } }));
    return Number(await this.commitScript({ keys: { set: k, state: this.stateKey }, args: { key }, each })) === 1;
  }

  async bump(counter: Counter): Promise<void> {
    await this.redis.hincrby(this.stateKey, counter, 1);
  }

  async cancelled(): Promise<boolean> {
    return (await this.redis.exists(this.cancelKey)) === 1;
  }

  async cancel(): Promise<void> {
    await this.redis.set(this.cancelKey, '1', 'EX', KEEP_S);
  }

  /** The pass is over: mark it, and let its sets expire. */
  async finish(): Promise<void> {
    await this.redis
      .multi()
      .hset(this.stateKey, 'finished', '1')
      .expire(this.stateKey, KEEP_S)
      .expire(this.doneKey, KEEP_S)
      .expire(this.keptKey, KEEP_S)
      .exec();
  }
}
