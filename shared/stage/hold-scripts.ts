/**
 * The Redis side of strict order's holds (ordering.ts), as Lua scripts so that each change of a
 * hold is atomic. Keys of one user's hold (hold-keys.ts): the list `hold:<stage>:<U>` (ids in
 * order, the head first) and the hash `hold:<stage>:<U>:back` (id → ms by which that id's copy is
 * due back on the shard, `:since` → ms the current head took the head, `:shard` → the shard of a
 * hold that lists a dead letter). Both expire together (the hold's TTL), refreshed by every write.
 * The shard's set `holds:<stage>:<shard>` names its held users.
 *
 * **Dead letters** (DLQ_ORDERING_MODE=strict): a dead-lettered id stays listed with the due-back
 * time DEAD_BACK ("never"), so no heal rule drops it. While such an id is the head the hold has no
 * TTL (it waits for an operator, however long) and the user is in the stage's sorted set
 * `dlq-waiting:<stage>` (score: since when). RESOLVE ends that wait: a replay puts the id back in
 * flight (due back now), a purge removes it.
 *
 * The scripts are in lua/hold-*.lua; each file says what it does with its keys and arguments.
 */
import { luaScript } from '../platform/lua-scripts.js';

/** Hash field of the time the current head became the head (ids are ULIDs: never this). */
export const SINCE = ':since';
/** Hash field of the shard of a hold that lists a dead letter (the replayer, which knows no shards, needs it). */
export const SHARD = ':shard';
/** Due-back time of a dead-lettered id: never (the largest JS date, exact in a Lua double). */
export const DEAD_BACK = '8640000000000000';

const constants = { DEAD_BACK, SINCE, SHARD };
const file = (name: string): URL => new URL(`./lua/${name}.lua`, import.meta.url);
const HOLD_KEYS = ['list', 'back', 'shardSet', 'waiting'] as const;

/** Appends `id` unless listed, records when its copy is due back. Returns {since, headIsDead}. */
export const ENQUEUE = luaScript({
  name: 'postmasterHoldEnqueue',
  file: file('hold-enqueue'),
  constants,
  keys: HOLD_KEYS,
  args: ['id', 'user', 'backMs', 'nowMs', 'ttlMs'],
});

/** The message was dead-lettered: `id` stays (or becomes) listed, due back never. Returns {since, headIsDead}. */
export const MARK_DEAD = luaScript({
  name: 'postmasterHoldDead',
  file: file('hold-mark-dead'),
  constants,
  keys: HOLD_KEYS,
  args: ['id', 'user', 'nowMs', 'ttlMs', 'shard'],
});

/** Removes `id`. Returns {0} when the hold is gone, else {1, since, headIsDead}. */
export const DONE = luaScript({ name: 'postmasterHoldDone', file: file('hold-done'), constants, keys: HOLD_KEYS, args: ['id', 'user', 'nowMs', 'ttlMs'] });

/**
 * The check of a delivery of a held user, dropping lost heads on the way. Returns {0, lost...} when
 * the user is not held (any more), else {1, head, headBackMs, since, enteredMs, lost...}.
 */
export const CHECK = luaScript({
  name: 'postmasterHoldCheck',
  file: file('hold-check'),
  constants,
  keys: HOLD_KEYS,
  args: ['id', 'user', 'enteredMs', 'graceMs', 'nowMs', 'ttlMs'],
});

/**
 * The replayer's side of a dead letter a user waits for. Returns {-1} when `id` is not in the state
 * the action expects, {0, shard} when the hold is gone, else {1}.
 */
export const RESOLVE = luaScript({
  name: 'postmasterHoldResolve',
  file: file('hold-resolve'),
  constants,
  keys: ['list', 'back', 'waiting'],
  args: ['id', 'user', 'nowMs', 'ttlMs', 'action', 'stampMs'],
});

/** Forgets a held user whose hold has expired or was ended by the replayer; 1 when it did. */
export const EXPIRED = luaScript({ name: 'postmasterHoldExpired', file: file('hold-expired'), keys: ['list', 'shardSet'], args: ['user'] });
