-- ARGV[4] visibility timeout (ms), ARGV[5] "1" when a receiver will long-poll if nothing
-- is found, ARGV[6] most messages, then as many receipt tokens.
-- Answers {"OK", next_due or "", then per message: id, stored value, "rc fr tok"}, or
-- {"NOQUEUE"}.
local info = queue_info(Q)
if not info then return {'NOQUEUE'} end
local visibility = tonumber(ARGV[4])
local max = tonumber(ARGV[6])
local ready, inv, rcv = qkey(Q, 'ready'), qkey(Q, 'inv'), qkey(Q, 'rcv')

-- Retention: messages past it disappear, received or not.
local expired = redis.call('ZRANGEBYSCORE', qkey(Q, 'exp'), '-inf', NOW_S, 'LIMIT', 0, 1000)
if #expired > 0 then remove_messages(Q, expired) end
-- Delays and visibility timeouts that have passed.
local due = redis.call('ZRANGEBYSCORE', inv, '-inf', NOW_S, 'LIMIT', 0, 1000)
if #due > 0 then
  local msgs = hmget(qkey(Q, 'msg'), due)
  local scored = {}
  for k, id in ipairs(due) do
    local _, ord = parse_msg(msgs[k])
    table.insert(scored, ord)
    table.insert(scored, id)
  end
  redis.call('ZREM', inv, unpack(due))
  redis.call('ZADD', ready, unpack(scored))
end

local dlq, dlq_info
if info.dlq ~= '' then
  dlq = info.dlq
  dlq_info = queue_info(dlq)
end

local got = 0
local guard = 0
local invisible_until = int(NOW + visibility)
local taken, rcvs, scored = {}, {}, {}
while got < max and guard < 100 do
  guard = guard + 1
  -- A range and ZREM rather than ZPOPMIN, whose answer formats every score.
  local ids = redis.call('ZRANGEBYSCORE', ready, '-inf', '(+inf', 'LIMIT', 0, max - got)
  if #ids == 0 then break end
  redis.call('ZREM', ready, unpack(ids))
  local prior = redis.call('HMGET', rcv, unpack(ids))
  for k, id in ipairs(ids) do
    local r = prior[k]
    local rc, fr = 0, NOW_S
    if r then
      local c, f = string.match(r, '^(%d+) (%d+) ')
      rc, fr = tonumber(c), f
    end
    if dlq_info and rc >= info.max_receive_count then
      move(Q, id, dlq, dlq_info, true)
    else
      got = got + 1
      local n = #rcvs
      taken[got] = id
      rcvs[n + 1] = id
      if rc == 0 then
        rcvs[n + 2] = '1 ' .. fr .. ' ' .. ARGV[6 + got]
      else
        rcvs[n + 2] = int(rc + 1) .. ' ' .. fr .. ' ' .. ARGV[6 + got]
      end
      scored[n + 1] = invisible_until
      scored[n + 2] = id
    end
  end
end

local out = {'OK', ''}
if got > 0 then
  redis.call('HSET', rcv, unpack(rcvs))
  redis.call('ZADD', inv, unpack(scored))
  local msgs = redis.call('HMGET', qkey(Q, 'msg'), unpack(taken))
  for k, id in ipairs(taken) do
    local n = #out
    out[n + 1] = id
    out[n + 2] = msgs[k]
    out[n + 3] = rcvs[2 * k]
  end
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
