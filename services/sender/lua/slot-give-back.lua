-- KEYS: window counter. ARGV: tokens to give back. Never below 0; never recreates an expired window.
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.min(used, tonumber(ARGV[1]))
if n > 0 then redis.call('DECRBY', KEYS[1], n) end
return n
