-- KEYS: window counter. ARGV: tokens in the window, wanted, ttl s. Returns the tokens granted (0..wanted).
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)
if n <= 0 then return 0 end
if used == 0 then redis.call('SET', KEYS[1], n, 'EX', ARGV[3]) else redis.call('INCRBY', KEYS[1], n) end
return n
