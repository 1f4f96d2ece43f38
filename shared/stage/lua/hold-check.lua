-- The check of a delivery of a held user. Deliveries come in queue order, so a head whose copy was
-- due back more than the grace before this delivery entered the shard would have come first: still
-- listed, it is lost, and is dropped — and so on with the next head. `enteredMs` is this id's own
-- due-back time when it is listed (a parked message), else the caller's estimate. A head without a
-- due-back time (a hold written before there were any) is timed from now. A dead head (DEAD_BACK)
-- is never lost. Only the front of the list is read: a lost id further back is dropped once it is
-- the head.
-- Returns {0, lost...} when the user is not held (any more), else {1, head, headBackMs, since,
-- enteredMs, lost...}.
-- KEYS: list, back, shardSet, waiting. ARGV: id, user, enteredMs, graceMs, nowMs, ttlMs.
--- @include "hold-settle"
local own = redis.call('HGET', KEYS[2], ARGV[1])
if own == DEAD_BACK then own = nil end
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
  redis.call('HSET', KEYS[2], SINCE, ARGV[5])
  settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[5], ARGV[6])
end
local since = redis.call('HGET', KEYS[2], SINCE) or ARGV[5]
return {1, head, redis.call('HGET', KEYS[2], head) or ARGV[5], since, enteredRaw, unpack(lost)}
