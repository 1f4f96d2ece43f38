-- The user wrote at lastInboundMs: their window is open until expiresAtMs. Only moves forward: a
-- redelivered or late older message never shortens a window.
-- KEYS: window. ARGV: lastInboundMs, expiresAtMs (shared/domain/window.ts).
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
