-- KEYS[1]: penalty; ARGV: now, until. Keeps the later deadline in `cur`. Included by slow-number.lua.
local now = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if wanted > cur then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', math.max(1, math.ceil(wanted - now)))
  cur = wanted
end
