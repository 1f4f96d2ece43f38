/**
 * The Redis side of strict order's holds (ordering.ts), as Lua scripts so that each change of a
 * hold is atomic. Keys of one user's hold: the list `hold:<stage>:<U>` (ids in order, the head
 * first) and the hash `hold:<stage>:<U>:back` (id → ms by which that id's copy is due back on the
 * shard, and `:since` → ms the current head took the head). Both expire together (the hold's TTL),
 * refreshed by every write. The shard's set `holds:<stage>:<shard>` names its held users.
 */

/** Hash field of the time the current head became the head (ids are ULIDs: never this). */
export const SINCE = ':since';

// KEYS: list, back, shardSet; ARGV: id, user, backMs, nowMs, ttlMs. Appends `id` unless listed,
// records when its copy is due back, refreshes the TTL. Returns the hold's :since.
export const ENQUEUE = `
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], '${SINCE}', ARGV[4])
end
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return redis.call('HGET', KEYS[2], '${SINCE}') or ARGV[4]`;

// KEYS: list, back, shardSet; ARGV: id, user, nowMs, ttlMs. Removes `id` (the head, sent or failed
// for good or dropped by a heal; or a parked message the worker dead-lettered). Returns {0} when
// the hold is gone, else {1, since}.
export const DONE = `
local head = redis.call('LINDEX', KEYS[1], 0)
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
  return {0}
end
if head == ARGV[1] then redis.call('HSET', KEYS[2], '${SINCE}', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, redis.call('HGET', KEYS[2], '${SINCE}') or ARGV[3]}`;

// KEYS: list, back, shardSet; ARGV: id, user, enteredMs, graceMs, nowMs.
// The check of a delivery of a held user. Deliveries come in queue order, so a head whose copy was
// due back more than the grace before this delivery entered the shard would have come first: still
// listed, it is lost, and is dropped — and so on with the next head. `enteredMs` is this id's own
// due-back time when it is listed (a parked message), else the caller's estimate. A head without a
// due-back time (a hold written before there were any) is timed from now. Only the front of the
// list is read: a lost id further back is dropped once it is the head.
// Returns {0, lost...} when the user is not held (any more), else {1, head, headBackMs, since,
// enteredMs, lost...}.
export const CHECK = `
local enteredRaw = redis.call('HGET', KEYS[2], ARGV[1]) or ARGV[3]
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
  return {0, unpack(lost)}
end
if #lost > 0 then redis.call('HSET', KEYS[2], '${SINCE}', ARGV[5]) end
local since = redis.call('HGET', KEYS[2], '${SINCE}') or ARGV[5]
return {1, head, redis.call('HGET', KEYS[2], head) or ARGV[5], since, enteredRaw, unpack(lost)}`;

// KEYS: list, shardSet; ARGV: user. Forgets a held user whose hold has expired (its TTL ran out).
export const EXPIRED = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1`;
