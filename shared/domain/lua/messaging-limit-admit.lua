-- KEYS: users, limit override; ARGV: now ms, window ms, configured limit ('unlimited' or n), user.
-- Returns {1, count} when admitted (count: users in the window now), {0, ms until a slot frees}.
-- Unlimited still counts: a limit Meta lowers later then starts from the real last 24 hours.
local now = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local limit = redis.call('GET', KEYS[2]) or ARGV[3]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return {1, redis.call('ZCARD', KEYS[1])} end
local n = redis.call('ZCARD', KEYS[1])
if limit ~= 'unlimited' and n >= tonumber(limit) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = 1
  if oldest[2] then wait = math.max(1, tonumber(oldest[2]) + win - now) end
  return {0, wait}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], win)
return {1, n + 1}
