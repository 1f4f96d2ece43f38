-- The message was dead-lettered: `id` stays (or becomes) listed, due back never. Returns {since,
-- headIsDead}.
-- KEYS: list, back, shardSet, waiting. ARGV: id, user, nowMs, ttlMs, shard.
--- @include "hold-settle"
--- @include "hold-open"
open(KEYS[1], KEYS[2], ARGV[3])
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], DEAD_BACK, SHARD, ARGV[5])
redis.call('SADD', KEYS[3], ARGV[2])
local dead = settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
return {redis.call('HGET', KEYS[2], SINCE) or ARGV[3], dead}
