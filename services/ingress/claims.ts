/**
 * Claims on Redis keys that say "this has been accepted", used for idempotency keys of the send API
 * and for Meta's webhook retries. A claim is *pending* (`p:<owner>:<ms>`) while its message is being
 * published, *done* (the final value: the first message id, or "d") once the broker confirmed it,
 * and gone again if the publish failed, so a retry is never mistaken for a duplicate of something
 * that never got in. A repeat that finds a claim pending must not drop its message (the first
 * publish may still fail): it waits or asks its client to come back. A claim left pending longer
 * than any publish can take lost its holder between publish and confirm (a crash, or Redis failing
 * the confirm write) and is taken over: at-least-once, never lost.
 *
 * A claim may name the message id its holder is publishing (`p:<owner>|<id>:<ms>`). When the
 * outcome of that publish is unknown (a confirm timed out, the channel died with it in flight), the
 * claim becomes *uncertain* (`u:<id>`) instead of being dropped; so does a stale pending claim that
 * named its id. The next claim of the key is then *reclaimed*: it must publish under that same id,
 * so that if the first copy did get in, the two are one message to every later dedup (the sender's
 * send ledger is keyed by message id) and the user gets it once.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../shared/platform/config.js';
import { luaScript, type LuaFn } from '../../shared/platform/lua-scripts.js';
import { waitForReplicas } from '../../shared/platform/redis.js';
import { TickBatch } from '../../shared/platform/tick-batch.js';

export type ClaimResult =
  { kind: 'claimed'; token: string } | { kind: 'reclaimed'; token: string; id: string } | { kind: 'done'; value: string } | { kind: 'busy' };

// Each script takes a batch of keys: one call for the claims of one request (or of one turn of the
// event loop, through TickBatch), sent as EVALSHA.
const lua = (name: string): URL => new URL(`./lua/${name}.lua`, import.meta.url);
const CLAIM = luaScript({
  name: 'postmasterClaimMany',
  file: lua('claim'),
  args: ['owner', 'ttlS', 'nowMs', 'staleMs'],
  each: { keys: ['claim'], args: ['id'] },
});
const CONFIRM = luaScript({ name: 'postmasterClaimConfirmMany', file: lua('claim-confirm'), each: { keys: ['claim'], args: ['token', 'value'] } });
const RELEASE = luaScript({ name: 'postmasterClaimReleaseMany', file: lua('claim-release'), each: { keys: ['claim'], args: ['token', 'uncertainId'] } });

export class Claims {
  private readonly claimScript: LuaFn<typeof CLAIM>;
  private readonly confirmScript: LuaFn<typeof CONFIRM>;
  private readonly releaseScript: LuaFn<typeof RELEASE>;
  /** Single claims of one turn of the event loop (the items of a batch request), in one call. */
  private readonly singles: TickBatch<{ key: string; owner: string; id: string }, ClaimResult>;

  constructor(
    private readonly redis: Redis,
    private readonly ttlS: number,
    /** Longer than a publish can take (PUBLISH_TIMEOUT_MS plus margin). */
    readonly staleMs: number,
    /** Given: confirm() waits for REDIS_WAIT_REPLICAS replicas (the send API's keys; webhook dedup does without). */
    private readonly replicas?: Pick<Config, 'redisWaitReplicas' | 'redisWaitTimeoutMs'>,
  ) {
    this.claimScript = CLAIM.bind(redis);
    this.confirmScript = CONFIRM.bind(redis);
    this.releaseScript = RELEASE.bind(redis);
    this.singles = new TickBatch(async (items) => {
      const out: ClaimResult[] = new Array(items.length);
      for (const owner of new Set(items.map((it) => it.owner))) {
        const idx = items.flatMap((it, i) => (it.owner === owner ? [i] : []));
        const got = await this.tryClaim(
          idx.map((i) => items[i].key),
          owner,
          idx.map((i) => items[i].id),
        );
        idx.forEach((i, n) => (out[i] = got[n]));
      }
      return out;
    });
  }

  /**
   * One round trip for all keys. `ids[i]`, when given, is the message id the claim of `keys[i]` will
   * publish (see reclaimed). Redis errors propagate.
   */
  async tryClaim(keys: string[], owner: string, ids: string[] = []): Promise<ClaimResult[]> {
    if (keys.length === 0) return [];
    const args = { owner: owner.replace(/[:|]/g, '_'), ttlS: this.ttlS, nowMs: Date.now(), staleMs: this.staleMs };
    const each = keys.map((claim, i) => ({ keys: { claim }, args: { id: ids[i] ?? '' } }));
    const replies = (await this.claimScript({ args, each })) as Array<[number, string?, string?]>;
    return keys.map((_, i) => {
      const [code, value, id] = replies[i];
      if (code === 1) return { kind: 'claimed', token: String(value) };
      if (code === 3) return { kind: 'reclaimed', token: String(value), id: String(id) };
      if (code === 0) return { kind: 'done', value: String(value) };
      return { kind: 'busy' };
    });
  }

  /**
   * Claims one key, waiting while another request holds it pending (at most `staleMs`, after which
   * the claim is taken over).
   */
  async claim(key: string, owner: string, id = '', pollMs = 25): Promise<Exclude<ClaimResult, { kind: 'busy' }>> {
    for (;;) {
      const r = await this.singles.add({ key, owner, id });
      if (r.kind !== 'busy') return r;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /**
   * The message is in the broker: from now on repeats find `value`. With `replicas`, one WAIT for
   * the whole batch (it covers the claims written before too); a ReplicaAckError then means the
   * keys are on the primary only.
   */
  async confirm(entries: Array<{ key: string; token: string; value: string }>): Promise<void> {
    if (entries.length === 0) return;
    await this.confirmScript({ each: entries.map((e) => ({ keys: { claim: e.key }, args: { token: e.token, value: e.value } })) });
    if (this.replicas) await waitForReplicas(this.redis, this.replicas, 'idempotency keys');
  }

  /**
   * The publish failed: the keys are free for the retry. An entry with `uncertainId` (its publish
   * may have got in) becomes uncertain instead: the retry reclaims it under that id.
   */
  async release(entries: Array<{ key: string; token: string; uncertainId?: string }>): Promise<void> {
    if (entries.length === 0) return;
    await this.releaseScript({ each: entries.map((e) => ({ keys: { claim: e.key }, args: { token: e.token, uncertainId: e.uncertainId ?? '' } })) });
  }
}
