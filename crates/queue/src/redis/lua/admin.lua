-- ARGV[4] the operation: create, purge, delete, redrive or stats.
--   create: ARGV[5] the stored queue JSON, ARGV[6] the dead-letter queue or "", ARGV[7]
--     retention (ms), ARGV[8] priority ("1" or "0"), ARGV[9] maxReceiveCount, ARGV[10] created_at.
--     {"OK", stored JSON} (the existing queue's when there is one), {"NODLQ"}
--   purge, delete: {"OK"}
--   redrive: ARGV[5] the destination or "": {"OK", moved, queue moved to, ...}
--   stats: {"OK", visible, in flight, delayed}
local op = ARGV[4]

local function purge(q)
  if is_fifo(q) then
    local groups = {}
    for _, m in ipairs(redis.call('HVALS', qkey(q, 'msg'))) do
      local group = select(7, parse_msg(m))
      if group then groups[group] = true end
    end
    for g, _ in pairs(groups) do redis.call('DEL', qkey(q, 'g:' .. g)) end
  end
  redis.call('DEL', qkey(q, 'msg'), qkey(q, 'rcv'), qkey(q, 'ready'), qkey(q, 'inv'), qkey(q, 'exp'))
end

if op == 'create' then
  local existing = redis.call('HGET', P .. ':queues', Q)
  if existing then return {'OK', existing} end
  if ARGV[6] ~= '' and redis.call('HEXISTS', P .. ':queues', ARGV[6]) == 0 then return {'NODLQ'} end
  redis.call('HSET', P .. ':queues', Q, ARGV[5])
  redis.call('HSET', qkey(Q, 'meta'), 'retention', ARGV[7], 'priority', ARGV[8], 'dlq', ARGV[6], 'mrc', ARGV[9],
    'created', ARGV[10])
  keep_big_encodings(Q)
  return {'OK', ARGV[5]}
end

local info = queue_info(Q)
if not info then return {'NOQUEUE'} end

if op == 'purge' then
  purge(Q)
  keep_big_encodings(Q)
  return {'OK'}
elseif op == 'delete' then
  purge(Q)
  redis.call('DEL', qkey(Q, 'seq'), qkey(Q, 'meta'), qkey(Q, 'polling'))
  redis.call('HDEL', P .. ':queues', Q)
  return {'OK'}
elseif op == 'redrive' then
  local dest, dest_info = ARGV[5], nil
  if dest ~= '' then
    dest_info = queue_info(dest)
    if not dest_info then return {'NODEST'} end
  end
  local moved = 0
  local targets = {}
  local ids = redis.call('ZRANGEBYSCORE', qkey(Q, 'exp'), '-inf', '(+inf')
  local msgs = hmget(qkey(Q, 'msg'), ids)
  local seqs, srcs = {}, {}
  for k, id in ipairs(ids) do
    local seq, _, _, _, _, src = parse_msg(msgs[k])
    seqs[id], srcs[id] = tonumber(seq), src
  end
  table.sort(ids, function(a, b) return seqs[a] < seqs[b] end)
  for _, id in ipairs(ids) do
    local vis = redis.call('ZSCORE', qkey(Q, 'inv'), id)
    if not vis or tonumber(vis) <= NOW then
      local to, to_info = dest, dest_info
      if to == '' then
        to = srcs[id]
        if to ~= '' then to_info = queue_info(to) end
      end
      if to_info then
        move(Q, id, to, to_info, false)
        moved = moved + 1
        targets[to] = true
      end
    end
  end
  local out = {'OK', tostring(moved)}
  for t, _ in pairs(targets) do table.insert(out, t) end
  return out
elseif op == 'stats' then
  local visible = redis.call('ZCOUNT', qkey(Q, 'ready'), '-inf', '(+inf')
    + redis.call('ZCOUNT', qkey(Q, 'inv'), '-inf', NOW)
  local in_flight, delayed = 0, 0
  -- Invisible after a receive is in flight; never received yet is delayed.
  local later = redis.call('ZRANGEBYSCORE', qkey(Q, 'inv'), '(' .. NOW_S, '(+inf')
  for _, r in ipairs(hmget(qkey(Q, 'rcv'), later)) do
    if r then
      in_flight = in_flight + 1
    else
      delayed = delayed + 1
    end
  end
  -- FIFO messages waiting behind their group's head count as visible, as in SQS.
  local total = redis.call('ZCOUNT', qkey(Q, 'exp'), '-inf', '(+inf')
  local expired = redis.call('ZCOUNT', qkey(Q, 'exp'), '-inf', NOW)
  local waiting = total - expired - visible - in_flight - delayed
  if waiting > 0 then visible = visible + waiting end
  return {'OK', tostring(visible), tostring(in_flight), tostring(delayed)}
end
return {'BADOP'}
