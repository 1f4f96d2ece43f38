-- The replayer's side of a dead letter a user waits for (only an id listed as dead, or for 'kept' as
-- in flight since stampMs): 'replayed': in flight again, due back now; 'kept': the replay did not go
-- out, dead again; 'discarded': purged, no longer waited for. Returns {-1} when `id` is not in that
-- state, {0, shard} when the hold is gone (the caller forgets it in the shard's set), else {1}.
-- KEYS: list, back, waiting. ARGV: id, user, nowMs, ttlMs, action, stampMs.
--- @include "hold-settle"
local was = redis.call('HGET', KEYS[2], ARGV[1])
local expect = ARGV[5] == 'kept' and ARGV[6] or DEAD_BACK
if was ~= expect then return {-1} end
local head = redis.call('LINDEX', KEYS[1], 0)
if ARGV[5] == 'replayed' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[6])
elseif ARGV[5] == 'kept' then
  redis.call('HSET', KEYS[2], ARGV[1], DEAD_BACK)
else
  redis.call('LREM', KEYS[1], 0, ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  if redis.call('LLEN', KEYS[1]) == 0 then
    local shard = redis.call('HGET', KEYS[2], SHARD) or ''
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[2])
    return {0, shard}
  end
end
if head == ARGV[1] and ARGV[5] ~= 'kept' then redis.call('HSET', KEYS[2], SINCE, ARGV[3]) end
settle(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4])
return {1}
