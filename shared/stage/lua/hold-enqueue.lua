-- Appends `id` unless listed, records when its copy is due back, refreshes the TTL. A dead head going
-- back into a retry tier starts a new wait. Returns {since, headIsDead}.
-- KEYS: list, back, shardSet, waiting. ARGV: id, user, backMs, nowMs, ttlMs.
--- @include "hold-settle"
--- @include "hold-open"
open(KEYS[1], KEYS[2], ARGV[4])
local was = redis.call('HGET', KEYS[2], ARGV[1])
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if was == DEAD_BACK and redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('HSET', KEYS[2], SINCE, ARGV[4]) end
redis.call('SADD', KEYS[3], ARGV[2])
local dead = settle(KEYS[1], KEYS[2], KEYS[4], ARGV[2], ARGV[4], ARGV[5])
return {redis.call('HGET', KEYS[2], SINCE) or ARGV[4], dead}
