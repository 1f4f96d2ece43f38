-- The forward-only move of a status record (shared/domain/status.ts), as a function that other scripts
-- include (the sender's ledger runs it in the same script as its `sent` mark: one round trip).
-- Arguments after the two keys: RECORD_ARGS in status.ts, in that order. Returns 1 moved, 0 stale,
-- -1 missing. `mapKey` (the wamid → id mapping) is only touched when `wamid` is not empty.
local function record(rec, mapKey, status, rank, atMs, ttl, mustExist, replayFromRank, wamid, errorJson, sendAt, maxHistory, id)
  -- The mapping is stored whatever becomes of the record (a webhook that overtook the sender).
  if wamid ~= '' then redis.call('SET', mapKey, id, 'EX', ttl) end
  if mustExist == '1' and redis.call('EXISTS', rec) == 0 then return -1 end
  -- One read of what the move needs and one write of what it changes: this runs for every message
  -- at least twice (accepted, sent), so its calls are the status records' share of Redis's CPU.
  local f = redis.call('HMGET', rec, 'rank', 'status', 'n', 'history', 'error')
  local r = tonumber(rank)
  local cur = tonumber(f[1] or '-1')
  local set = {}
  local moved = 0
  if r > cur or (f[2] == 'dead-lettered' and r >= tonumber(replayFromRank) and r < cur) then
    local n = tonumber(f[3] or '0') + 1
    set = { 'status', status, 'rank', rank, 'n', n }
    if n <= tonumber(maxHistory) then
      local entry = status .. '@' .. atMs
      set[#set + 1] = 'history'
      set[#set + 1] = f[4] and (f[4] .. ',' .. entry) or entry
    end
    if errorJson ~= '' then
      set[#set + 1] = 'error'
      set[#set + 1] = errorJson
    elseif f[5] and status ~= 'failed' and status ~= 'dead-lettered' then
      redis.call('HDEL', rec, 'error')
    end
    moved = 1
  end
  if wamid ~= '' then
    set[#set + 1] = 'wamid'
    set[#set + 1] = wamid
  end
  if sendAt ~= '' then
    set[#set + 1] = 'sendAt'
    set[#set + 1] = sendAt
  end
  if #set > 0 then redis.call('HSET', rec, unpack(set)) end
  local t = tonumber(ttl)
  if redis.call('TTL', rec) < t then redis.call('EXPIRE', rec, t) end
  return moved
end
