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
 */

/** Hash field of the time the current head became the head (ids are ULIDs: never this). */
export const SINCE = ':since';
/** Hash field of the shard of a hold that lists a dead letter (the replayer, which knows no shards, needs it). */
export const SHARD = ':shard';
/** Due-back time of a dead-lettered id: never (the largest JS date, exact in a Lua double). */
export const DEAD_BACK = '8640000000000000';

// settle(list, back, waiting, user, nowMs, ttlMs): after a change of the head. A dead head keeps the
// hold without TTL and the user in `waiting`; anything else leaves `waiting` and refreshes the TTL.
// Returns 1 when the head is a dead letter.
const SETTLE = `
local function settle(list, back, waiting, user, now, ttl)
  local head = redis.call('LINDEX', list, 0)
  if head and redis.call('HGET', back, head) == '${DEAD_BACK}' then
    redis.call('ZADD', waiting, 'NX', now, user)
    redis.call('PERSIST', list)
    redis.call('PERSIST', back)
    return 1
  end
  redis.call('ZREM', waiting, user)
  if head then
    redis.call('PEXPIRE', list, ttl)
    redis.call('PEXPIRE', back, ttl)
  end
  return 0
end`;

// Opens a hold that is not there (the first listed id becomes the head now).
const OPEN = `
local function open(list, back, now)
  if redis.call('LLEN', list) == 0 then
    redis.call('DEL', back)
    redis.call('HSET', back, '${SINCE}', now)
  end
end`;

// KEYS: list, back, shardSet, waiting; ARGV: id, user, backMs, nowMs, ttlMs. Appends `id` unless
// listed, records when its copy is due back, refreshes the TTL. A dead head going back into a retry
// tier starts a new wait. Returns {since, headIsDead}.
export const ENQUEUE = `${SETTLE}${OPEN}
open(KEYS[1], KEYS[2], ARGV[4])
local was = redis.call('HGET', KEYS[2], ARGV[1])
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if was == '${DEAD_BACK}' and redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('HSET', KEYS[2], '${SINCE}', ARGV[4]) end
redis.call('SADD', KEYS[3], ARGV[2])
local dead = settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[4], ARGV[5])
return {redis.call('HGET', KEYS[2], '${SINCE}') or ARGV[4], dead}`;

// KEYS: list, back, shardSet, waiting; ARGV: id, user, nowMs, ttlMs, shard. The message was
// dead-lettered: `id` stays (or becomes) listed, due back never. Returns {since, headIsDead}.
export const MARK_DEAD = `${SETTLE}${OPEN}
open(KEYS[1], KEYS[2], ARGV[3])
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], '${DEAD_BACK}', '${SHARD}', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[2])
local dead = settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
return {redis.call('HGET', KEYS[2], '${SINCE}') or ARGV[3], dead}`;

// KEYS: list, back, shardSet, waiting; ARGV: id, user, nowMs, ttlMs. Removes `id` (the head, sent or
// failed for good or dropped by a heal; or a parked message the worker dead-lettered). Returns {0}
// when the hold is gone, else {1, since, headIsDead}.
export const DONE = `${SETTLE}
local head = redis.call('LINDEX', KEYS[1], 0)
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  return {0}
end
if head == ARGV[1] then redis.call('HSET', KEYS[2], '${SINCE}', ARGV[3]) end
local dead = settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
return {1, redis.call('HGET', KEYS[2], '${SINCE}') or ARGV[3], dead}`;

// KEYS: list, back, shardSet, waiting; ARGV: id, user, enteredMs, graceMs, nowMs, ttlMs.
// The check of a delivery of a held user. Deliveries come in queue order, so a head whose copy was
// due back more than the grace before this delivery entered the shard would have come first: still
// listed, it is lost, and is dropped — and so on with the next head. `enteredMs` is this id's own
// due-back time when it is listed (a parked message), else the caller's estimate. A head without a
// due-back time (a hold written before there were any) is timed from now. A dead head (DEAD_BACK)
// is never lost. Only the front of the list is read: a lost id further back is dropped once it is
// the head.
// Returns {0, lost...} when the user is not held (any more), else {1, head, headBackMs, since,
// enteredMs, lost...}.
export const CHECK = `${SETTLE}
local own = redis.call('HGET', KEYS[2], ARGV[1])
if own == '${DEAD_BACK}' then own = nil end
local enteredRaw = own or ARGV[3]
local entered = tonumber(enteredRaw)
local grace = tonumber(ARGV[4])
local lost = {}
local head = redis.call('LINDEX', KEYS[1], 0)
while head and head ~= ARGV[1] do
  local back = tonumber(redis.call('HGET', KEYS[2], head) or '')
  if not back then
    redis.call('HSET', KEYS[2], head, ARGV[5])
    break
  end
  if entered <= back + grace then break end
  redis.call('LPOP', KEYS[1])
  redis.call('HDEL', KEYS[2], head)
  lost[#lost + 1] = head
  head = redis.call('LINDEX', KEYS[1], 0)
end
if not head then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  return {0, unpack(lost)}
end
if #lost > 0 then
  redis.call('HSET', KEYS[2], '${SINCE}', ARGV[5])
  settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[5], ARGV[6])
end
local since = redis.call('HGET', KEYS[2], '${SINCE}') or ARGV[5]
return {1, head, redis.call('HGET', KEYS[2], head) or ARGV[5], since, enteredRaw, unpack(lost)}`;

// KEYS: list, back, waiting; ARGV: id, user, nowMs, ttlMs, action, stampMs. The replayer's side of a
// dead letter a user waits for (only an id listed as dead, or for 'kept' as in flight since stampMs):
// 'replayed': in flight again, due back now; 'kept': the replay did not go out, dead again;
// 'discarded': purged, no longer waited for. Returns {-1} when `id` is not in that state, {0, shard}
// when the hold is gone (the caller forgets it in the shard's set), else {1}.
export const RESOLVE = `${SETTLE}
local was = redis.call('HGET', KEYS[2], ARGV[1])
local expect = ARGV[5] == 'kept' and ARGV[6] or '${DEAD_BACK}'
if was ~= expect then return {-1} end
local head = redis.call('LINDEX', KEYS[1], 0)
if ARGV[5] == 'replayed' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[6])
elseif ARGV[5] == 'kept' then
  redis.call('HSET', KEYS[2], ARGV[1], '${DEAD_BACK}')
else
  redis.call('LREM', KEYS[1], 0, ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  if redis.call('LLEN', KEYS[1]) == 0 then
    local shard = redis.call('HGET', KEYS[2], '${SHARD}') or ''
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[2])
    return {0, shard}
  end
end
if head == ARGV[1] and ARGV[5] ~= 'kept' then redis.call('HSET', KEYS[2], '${SINCE}', ARGV[3]) end
settle(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4])
return {1}`;

// KEYS: list, shardSet; ARGV: user. Forgets a held user whose hold has expired (its TTL ran out) or
// was ended by the replayer.
export const EXPIRED = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1`;
