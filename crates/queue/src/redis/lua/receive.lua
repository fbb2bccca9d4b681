-- ARGV[4] visibility timeout (ms), ARGV[5] "1" when a receiver will long-poll if nothing
-- is found, ARGV[6] most messages, then as many receipt tokens.
-- Answers {"OK", next_due or "", then per message: its receipt handle ("ID:rc:first:tok",
-- its member in inv) and its stored value}, or {"NOQUEUE"} / {"LAYOUT"}.
local info = queue_info(Q)
if info == nil then return {'NOQUEUE'} end
if not info then return {'LAYOUT'} end
local visibility = tonumber(ARGV[4])
local max = tonumber(ARGV[6])
local ready, inv, msg = qkey(Q, 'ready'), qkey(Q, 'inv'), qkey(Q, 'msg')

-- Delays and visibility timeouts that have passed: back to ready in delivery order, the
-- member (and so the receipt handle) unchanged, unless past retention.
local due = redis.call('ZRANGEBYSCORE', inv, '-inf', NOW_S, 'LIMIT', 0, 1000)
if #due > 0 then
  redis.call('ZREM', inv, unpack(due))
  local ids = {}
  for k, m in ipairs(due) do ids[k] = id_of(m) end
  local stored = redis.call('HMGET', msg, unpack(ids))
  local scored, gone, gone_stored = {}, {}, {}
  for k, m in ipairs(due) do
    local v = stored[k]
    if v then
      if expired(v) then
        gone[#gone + 1] = ids[k]
        gone_stored[#gone_stored + 1] = v
      else
        local seq, _, _, _, prio = parse_msg(v)
        push2(scored, order_key(Q, prio, seq), m)
      end
    end
  end
  if #scored > 0 then redis.call('ZADD', ready, unpack(scored)) end
  if #gone > 0 then remove_messages(Q, gone, gone_stored) end
end

local dlq_info
if info.dlq ~= '' then
  dlq_info = queue_info(info.dlq)
  if dlq_info == false then return {'LAYOUT'} end
end

local got = 0
local guard = 0
local invisible_until = int(NOW + visibility)
local first_suffix = ':1:' .. NOW_S .. ':'
local out, scored = {'OK', ''}, {}
while got < max and guard < 100 do
  guard = guard + 1
  -- A range and ZREM rather than ZPOPMIN, whose answer formats every score.
  local ms = redis.call('ZRANGEBYSCORE', ready, '-inf', '(+inf', 'LIMIT', 0, max - got)
  if #ms == 0 then break end
  redis.call('ZREM', ready, unpack(ms))
  local ids = {}
  for k, m in ipairs(ms) do
    if #m == 36 then ids[k] = m else ids[k] = id_of(m) end
  end
  local stored = redis.call('HMGET', msg, unpack(ids))
  local gone, gone_stored
  for k, m in ipairs(ms) do
    local v = stored[k]
    if not v then
      -- Nothing stored: the member was left behind; it is gone from ready now.
    elseif expired(v) then
      gone = gone or {}
      gone_stored = gone_stored or {}
      gone[#gone + 1] = ids[k]
      gone_stored[#gone_stored + 1] = v
    elseif #m == 36 then
      -- Never received in this queue: its first receive is now (maxReceiveCount is at
      -- least 1, so it is never dead-lettered here).
      got = got + 1
      local handle = m .. first_suffix .. ARGV[6 + got]
      local n = #out
      out[n + 1] = handle
      out[n + 2] = v
      n = #scored
      scored[n + 1] = invisible_until
      scored[n + 2] = handle
    else
      local c, fr = string.match(m, '^.-:(%d+):(%d+)')
      local rc = tonumber(c)
      if dlq_info and rc >= info.max_receive_count then
        move(Q, ids[k], v, info.dlq, dlq_info, true, rc, fr)
      else
        got = got + 1
        local handle = ids[k] .. ':' .. int(rc + 1) .. ':' .. fr .. ':' .. ARGV[6 + got]
        local n = #out
        out[n + 1] = handle
        out[n + 2] = v
        n = #scored
        scored[n + 1] = invisible_until
        scored[n + 2] = handle
      end
    end
  end
  if gone then remove_messages(Q, gone, gone_stored) end
end

if got > 0 then
  redis.call('ZADD', inv, unpack(scored))
else
  if ARGV[5] == '1' then
    -- Sends publish while this key lives (the longest poll, and a second); a poller renews
    -- it on every attempt.
    redis.call('SET', qkey(Q, 'polling'), '1', 'PX', 21000)
  end
  local first = redis.call('ZRANGEBYSCORE', inv, '-inf', '(+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #first > 0 then out[2] = first[2] end
end
return out
