-- The dedup checks of one turn of the event loop (send-ledger.ts), in one call. Per message —
-- KEYS: sent, sending, the customer-service window; fixed ARGV: ttl s, replica, window ms.
-- Returns per message 'sent' | 'ambiguous' | 'fresh', then 1 if the window is open, else 0 (read
-- on Redis's clock: one GET more in a script that runs anyway, no round trip of its own).
local out = {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS / 3 do
  local sent, sending, window = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('EXISTS', sent) == 1 then out[2 * i - 1] = 'sent'
  elseif redis.call('SET', sending, ARGV[2], 'EX', ARGV[1], 'NX') then out[2 * i - 1] = 'fresh'
  else
    redis.call('SET', sending, ARGV[2], 'EX', ARGV[1])
    out[2 * i - 1] = 'ambiguous'
  end
  local last = tonumber(redis.call('GET', window) or '')
  out[2 * i] = (last and last + tonumber(ARGV[3]) > now) and 1 or 0
end
return out
