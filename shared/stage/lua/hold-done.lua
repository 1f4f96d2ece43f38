-- Removes `id` (the head, sent or failed for good or dropped by a heal; or a parked message the worker
-- dead-lettered). Returns {0} when the hold is gone, else {1, since, headIsDead}.
-- KEYS: list, back, shardSet, waiting. ARGV: id, user, nowMs, ttlMs.
--- @include "hold-settle"
local head = redis.call('LINDEX', KEYS[1], 0)
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  return {0}
end
if head == ARGV[1] then redis.call('HSET', KEYS[2], SINCE, ARGV[3]) end
local dead = settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
return {1, redis.call('HGET', KEYS[2], SINCE) or ARGV[3], dead}
