-- Claims a batch of keys. Returns per key {1, token} claimed, {3, token, id} reclaimed (publish
-- under id), {0, value} done, {2} busy (services/ingress/claims.ts says what each means).
-- KEYS: the claims. ARGV: owner, ttlS, nowMs, staleMs, then one id per key ('' for none).
local out = {}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  local prior = false
  local busy = false
  if v and string.sub(v, 1, 2) == 'p:' then
    local since = tonumber(string.match(v, ':(%d+)$') or '0')
    if tonumber(ARGV[3]) - since <= tonumber(ARGV[4]) then busy = true end
    prior = string.match(v, '|([^:|]+):%d+$')
    v = false
  elseif v and string.sub(v, 1, 2) == 'u:' then
    prior = string.sub(v, 3)
    v = false
  end
  if busy then out[i] = {2}
  elseif not v then
    local id = prior or ARGV[4 + i]
    local token = 'p:' .. ARGV[1]
    if id ~= '' then token = token .. '|' .. id end
    token = token .. ':' .. ARGV[3]
    redis.call('SET', KEYS[i], token, 'EX', ARGV[2])
    if prior then out[i] = {3, token, prior} else out[i] = {1, token} end
  else out[i] = {0, v} end
end
return out
