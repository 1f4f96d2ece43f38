-- KEYS: penalty, rate; ARGV: now, until, cooldownMs, minFactor, step, guardMs.
-- Penalizes the number and halves its factor (at most once per guard); returns {until, factor}.
--- @include "penalize"
local cd = tonumber(ARGV[3])
local step = tonumber(ARGV[5])
local f = tonumber(redis.call('HGET', KEYS[2], 'f') or '1')
local at = tonumber(redis.call('HGET', KEYS[2], 'at') or '0')
local eff = 1
if cd > 0 then
  eff = math.min(1, f + step * math.floor(math.max(0, now - at) / cd))
  if now - at >= tonumber(ARGV[6]) then
    eff = math.max(tonumber(ARGV[4]), eff / 2)
    redis.call('HSET', KEYS[2], 'f', tostring(eff), 'at', ARGV[1])
    redis.call('PEXPIRE', KEYS[2], math.ceil(((1 - eff) / step + 1) * cd))
  end
end
return {tostring(cur), tostring(eff)}
