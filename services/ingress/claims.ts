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

export type ClaimResult =
  | { kind: 'claimed'; token: string }
  | { kind: 'reclaimed'; token: string; id: string }
  | { kind: 'done'; value: string }
  | { kind: 'busy' };

// KEYS[1]; ARGV: owner, ttlS, nowMs, staleMs, id. Returns {1, token} claimed, {3, token, id} reclaimed
// (publish under id), {0, value} done, {2} busy.
const CLAIM = `
local v = redis.call('GET', KEYS[1])
local prior = false
if v and string.sub(v, 1, 2) == 'p:' then
  local since = tonumber(string.match(v, ':(%d+)$') or '0')
  if tonumber(ARGV[3]) - since <= tonumber(ARGV[4]) then return {2} end
  prior = string.match(v, '|([^:|]+):%d+$')
  v = false
elseif v and string.sub(v, 1, 2) == 'u:' then
  prior = string.sub(v, 3)
  v = false
end
if not v then
  local id = prior or ARGV[5]
  local token = 'p:' .. ARGV[1]
  if id ~= '' then token = token .. '|' .. id end
  token = token .. ':' .. ARGV[3]
  redis.call('SET', KEYS[1], token, 'EX', ARGV[2])
  if prior then return {3, token, prior} end
  return {1, token}
end
return {0, v}`;

// KEYS[1]; ARGV: token, value. Pending → done, keeping the TTL; only if the claim is still ours.
const CONFIRM = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0`;

// KEYS[1]; ARGV: token, uncertainId. Drops a pending claim, only if it is still ours; with an id,
// marks it uncertain instead (the message may be in the broker under that id).
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] ~= '' then return redis.call('SET', KEYS[1], 'u:' .. ARGV[2], 'KEEPTTL') end
  return redis.call('DEL', KEYS[1])
end
return 0`;

export class Claims {
  constructor(
    private readonly redis: Redis,
    private readonly ttlS: number,
    /** Longer than a publish can take (PUBLISH_TIMEOUT_MS plus margin). */
    readonly staleMs: number,
  ) {}

  /**
   * One round trip for all keys. `ids[i]`, when given, is the message id the claim of `keys[i]` will
   * publish (see reclaimed). Redis errors propagate.
   */
  async tryClaim(keys: string[], owner: string, ids: string[] = []): Promise<ClaimResult[]> {
    if (keys.length === 0) return [];
    const now = Date.now();
    const pipe = this.redis.pipeline();
    keys.forEach((k, i) => pipe.eval(CLAIM, 1, k, owner.replace(/[:|]/g, '_'), this.ttlS, now, this.staleMs, ids[i] ?? ''));
    const replies = (await pipe.exec()) ?? [];
    return keys.map((_, i) => {
      const [err, res] = replies[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const [code, value, id] = res as [number, string?, string?];
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
      const [r] = await this.tryClaim([key], owner, [id]);
      if (r.kind !== 'busy') return r;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /** The message is in the broker: from now on repeats find `value`. */
  async confirm(entries: Array<{ key: string; token: string; value: string }>): Promise<void> {
    if (entries.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const e of entries) pipe.eval(CONFIRM, 1, e.key, e.token, e.value);
    await execAll(pipe);
  }

  /**
   * The publish failed: the keys are free for the retry. An entry with `uncertainId` (its publish
   * may have got in) becomes uncertain instead: the retry reclaims it under that id.
   */
  async release(entries: Array<{ key: string; token: string; uncertainId?: string }>): Promise<void> {
    if (entries.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const e of entries) pipe.eval(RELEASE, 1, e.key, e.token, e.uncertainId ?? '');
    await execAll(pipe);
  }
}

async function execAll(pipe: ReturnType<Redis['pipeline']>): Promise<void> {
  const replies = (await pipe.exec()) ?? [];
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
}
