-- ARGV[4] visibility timeout (ms), ARGV[5] "1" when a receiver will long-poll if nothing
-- is found, ARGV[6] most messages, then as many receipt tokens.
-- Answers {"OK", next_due or "", then per message 12 fields}, or {"NOQUEUE"}.
local info = queue_info(Q)
if not info then return {'NOQUEUE'} end
local visibility = tonumber(ARGV[4])
local max = tonumber(ARGV[6])

-- Retention: messages past it disappear, received or not.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', qkey(Q, 'exp'), '-inf', NOW, 'LIMIT', 0, 1000)) do
  remove_message(Q, id)
end
-- Delays and visibility timeouts that have passed.
local due = redis.call('ZRANGEBYSCORE', qkey(Q, 'inv'), '-inf', NOW, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', qkey(Q, 'inv'), id)
  redis.call('ZADD', qkey(Q, 'ready'), redis.call('HGET', mkey(Q, id), 'ord'), id)
end

local dlq, dlq_info
if info.dlq ~= '' then
  dlq = info.dlq
  dlq_info = queue_info(dlq)
end

local out = {'OK', ''}
local got = 0
local guard = 0
local invisible_until = NOW + visibility
while got < max and guard < 100 do
  guard = guard + 1
  local ids = redis.call('ZRANGE', qkey(Q, 'ready'), 0, max - got - 1)
  if #ids == 0 then break end
  local taken, scored = {}, {}
  for _, id in ipairs(ids) do
    local m = mkey(Q, id)
    local f = redis.call('HMGET', m, 'rc', 'fr', 'body', 'attrs', 'group', 'dedup', 'prio', 'sent', 'seq')
    local rc = tonumber(f[1])
    if dlq_info and rc >= info.max_receive_count then
      move(Q, id, dlq, dlq_info, true)
    else
      got = got + 1
      local tok = ARGV[6 + got]
      rc = rc + 1
      local fr = f[2]
      if fr == '' then fr = tostring(NOW) end
      redis.call('HSET', m, 'rc', rc, 'tok', tok, 'vis', invisible_until, 'fr', fr)
      table.insert(taken, id)
      table.insert(scored, invisible_until)
      table.insert(scored, id)
      for _, v in ipairs({id, tok, f[3], f[4], f[5], f[6], f[7], f[8], fr, tostring(rc), f[9], ''}) do
        table.insert(out, v)
      end
    end
  end
  -- One call each for all the messages taken in this pass.
  if #taken > 0 then
    redis.call('ZREM', qkey(Q, 'ready'), unpack(taken))
    redis.call('ZADD', qkey(Q, 'inv'), unpack(scored))
  end
end
if got == 0 then
  if ARGV[5] == '1' then
    -- Sends publish while this key lives (the longest poll, and a second); a poller renews
    -- it on every attempt.
    redis.call('SET', qkey(Q, 'polling'), '1', 'PX', 21000)
  end
  local first = redis.call('ZRANGE', qkey(Q, 'inv'), 0, 0, 'WITHSCORES')
  if #first > 0 then out[2] = first[2] end
end
return out
