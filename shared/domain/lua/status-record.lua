-- The forward-only move of a status record (shared/domain/status.ts), as a function that other scripts
-- include (the sender's ledger runs it in the same script as its `sent` mark: one round trip).
-- Arguments after the two keys: RECORD_ARGS in status.ts, in that order. Returns 1 moved, 0 stale,
-- -1 missing. `mapKey` (the wamid → id mapping) is only touched when `wamid` is not empty.
local function record(rec, mapKey, status, rank, atMs, ttl, mustExist, replayFromRank, wamid, errorJson, sendAt, maxHistory, id)
  -- The mapping is stored whatever becomes of the record (a webhook that overtook the sender).
  if wamid ~= '' then redis.call('SET', mapKey, id, 'EX', ttl) end
  if mustExist == '1' and redis.call('EXISTS', rec) == 0 then return -1 end
  local r = tonumber(rank)
  local cur = tonumber(redis.call('HGET', rec, 'rank') or '-1')
  local curStatus = redis.call('HGET', rec, 'status')
  local moved = 0
  if r > cur or (curStatus == 'dead-lettered' and r >= tonumber(replayFromRank) and r < cur) then
    redis.call('HSET', rec, 'status', status, 'rank', rank)
    if redis.call('HINCRBY', rec, 'n', 1) <= tonumber(maxHistory) then
      local h = redis.call('HGET', rec, 'history')
      local entry = status .. '@' .. atMs
      redis.call('HSET', rec, 'history', h and (h .. ',' .. entry) or entry)
    end
    if errorJson ~= '' then redis.call('HSET', rec, 'error', errorJson)
    elseif status ~= 'failed' and status ~= 'dead-lettered' then redis.call('HDEL', rec, 'error') end
    moved = 1
  end
  if wamid ~= '' then redis.call('HSET', rec, 'wamid', wamid) end
  if sendAt ~= '' then redis.call('HSET', rec, 'sendAt', sendAt) end
  local t = tonumber(ttl)
  if redis.call('TTL', rec) < t then redis.call('EXPIRE', rec, t) end
  return moved
end
