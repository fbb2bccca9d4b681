-- ARGV[4] the queue's created_at the caller validated against, ARGV[5] the count, then per
-- message 3 fields: id, the stored value but its sequence number ("exp sent vis prio src
-- group", a newline, then the client's part: body, attributes and deduplication id as the
-- client encodes them), and "group dedup prio vis", or "" for none of them (visible now,
-- priority 0).
-- Answers {"OK"} and per message its sequence number, or "ID seq" of the earlier message
-- when a deduplication id repeats; or {"NOQUEUE"} / {"LAYOUT"} / {"STALE"}.
local info = queue_info(Q)
if info == nil then return {'NOQUEUE'} end
if not info then return {'LAYOUT'} end
if info.created_at ~= tonumber(ARGV[4]) then return {'STALE'} end
local out = {'OK'}
local window = 300000
local n = tonumber(ARGV[5])
-- One sequence number per message, taken at once; a deduplicated send leaves a gap.
local seq = redis.call('INCRBY', qkey(Q, 'seq'), n) - n
local w = writes()
local msg, ready = w.msg, w.ready
local plain_ord = not info.priority
for b = 6, 5 + 3 * n, 3 do
  local id, opts = ARGV[b], ARGV[b + 2]
  seq = seq + 1
  local s = seq_of(seq)
  if opts == '' then
    local k = #msg
    msg[k + 1] = id
    msg[k + 2] = s .. ' ' .. ARGV[b + 1]
    k = #ready
    if plain_ord then ready[k + 1] = s else ready[k + 1] = order_key(Q, '0', s) end
    ready[k + 2] = id
    out[#out + 1] = s
  else
    local group, dedup, prio, vis = string.match(opts, '^(%S*) (%S*) (%d+) (%d+)$')
    local done = false
    if dedup ~= '' then
      local earlier = redis.call('GET', qkey(Q, 'd:' .. dedup))
      if earlier then
        local eid, eseq, eexp = string.match(earlier, '^(%S+) (%S+) (%S+)$')
        if tonumber(eexp) > NOW then
          out[#out + 1] = eid .. ' ' .. eseq
          done = true
        end
      end
    end
    if not done then
      insert(Q, w, id, s, s .. ' ' .. ARGV[b + 1], vis, prio, group, id)
      if dedup ~= '' then
        -- The stored expiry decides; the key's own TTL only collects garbage.
        redis.call('SET', qkey(Q, 'd:' .. dedup), id .. ' ' .. s .. ' ' .. int(NOW + window), 'PX', window + 60000)
      end
      out[#out + 1] = s
    end
  end
end
flush(Q, w)
return out
