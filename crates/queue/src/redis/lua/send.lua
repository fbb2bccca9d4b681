-- ARGV[4] the queue's created_at the caller validated against, ARGV[5] the count, then per
-- message 7 fields: id, body, attrs, group, dedup, prio, delay (ms).
-- Answers {"OK", id, seq, id, seq, ...}, or {"NOQUEUE"} / {"STALE"}.
local info = queue_info(Q)
if not info then return {'NOQUEUE'} end
if info.created_at ~= tonumber(ARGV[4]) then return {'STALE'} end
local out = {'OK'}
local window = 300000
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  local b = 6 + i * 7
  local id, dedup = ARGV[b], ARGV[b + 4]
  local done = false
  if dedup ~= '' then
    local dkey = qkey(Q, 'd:' .. dedup)
    local earlier = redis.call('GET', dkey)
    if earlier then
      local eid, eseq, eexp = string.match(earlier, '^(%S+) (%S+) (%S+)$')
      if tonumber(eexp) > NOW then
        table.insert(out, eid)
        table.insert(out, eseq)
        done = true
      end
    end
  end
  if not done then
    local f = { body = ARGV[b + 1], attrs = ARGV[b + 2], group = ARGV[b + 3], dedup = dedup, prio = ARGV[b + 5],
      sent = NOW, vis = NOW + tonumber(ARGV[b + 6]), rc = 0, fr = '', src = '' }
    local seq = insert(Q, info, id, f)
    if dedup ~= '' then
      -- The stored expiry decides; the key's own TTL only collects garbage.
      redis.call('SET', qkey(Q, 'd:' .. dedup), id .. ' ' .. seq .. ' ' .. (NOW + window), 'PX', window + 60000)
    end
    table.insert(out, id)
    table.insert(out, tostring(seq))
  end
end
return out
