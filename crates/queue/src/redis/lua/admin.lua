-- ARGV[4] the operation: create, purge, delete, redrive or stats.
--   create: ARGV[5] the stored queue JSON, ARGV[6] the dead-letter queue or "", ARGV[7]
--     retention (ms), ARGV[8] priority ("1" or "0"), ARGV[9] maxReceiveCount, ARGV[10] created_at.
--     {"OK", stored JSON} (the existing queue's when there is one), {"NODLQ"}
--   purge, delete: {"OK"}
--   redrive: ARGV[5] the destination or "": {"OK", moved, queue moved to, ...}
--   stats: {"OK", visible, in flight, delayed}
-- A queue whose keys are in another layout answers {"LAYOUT"} to everything but delete,
-- which removes it whatever its layout.
local op = ARGV[4]

-- `old`: the queue's keys are in layout 1 (values without the leading retention field).
local function purge(q, old)
  if is_fifo(q) then
    local groups = {}
    for _, m in ipairs(redis.call('HVALS', qkey(q, 'msg'))) do
      local group
      if old then
        group = string.match(m, '^%d+ %d+ %d+ %d+ %d+ %S* (%S*)\n')
      else
        group = select(7, parse_msg(m))
      end
      if group then groups[group] = true end
    end
    for g, _ in pairs(groups) do redis.call('DEL', qkey(q, 'g:' .. g)) end
  end
  -- rcv and exp are layout 1's.
  redis.call('DEL', qkey(q, 'msg'), qkey(q, 'ready'), qkey(q, 'inv'), qkey(q, 'rcv'), qkey(q, 'exp'))
end

if op == 'create' then
  local existing = redis.call('HGET', P .. ':queues', Q)
  if existing then
    if queue_info(Q) == false then return {'LAYOUT'} end
    return {'OK', existing}
  end
  if ARGV[6] ~= '' and redis.call('HEXISTS', P .. ':queues', ARGV[6]) == 0 then return {'NODLQ'} end
  redis.call('HSET', P .. ':queues', Q, ARGV[5])
  redis.call('HSET', qkey(Q, 'meta'), 'retention', ARGV[7], 'priority', ARGV[8], 'dlq', ARGV[6], 'mrc', ARGV[9],
    'created', ARGV[10], 'layout', LAYOUT)
  keep_big_encodings(Q)
  return {'OK', ARGV[5]}
end

local info = queue_info(Q)
if info == nil then return {'NOQUEUE'} end

if op == 'delete' then
  purge(Q, info == false)
  redis.call('DEL', qkey(Q, 'seq'), qkey(Q, 'meta'), qkey(Q, 'polling'))
  redis.call('HDEL', P .. ':queues', Q)
  return {'OK'}
end
if not info then return {'LAYOUT'} end

if op == 'purge' then
  purge(Q, false)
  keep_big_encodings(Q)
  return {'OK'}
elseif op == 'redrive' then
  local dest, dest_info = ARGV[5], nil
  if dest ~= '' then
    dest_info = queue_info(dest)
    if dest_info == nil then return {'NODEST'} end
    if not dest_info then return {'LAYOUT'} end
  end
  -- Every message not invisible (in flight or delayed) moves, oldest first: first all leave
  -- this queue, then they enter their destinations, so no group head is promoted between.
  local ready, inv = qkey(Q, 'ready'), qkey(Q, 'inv')
  local staying, member = {}, {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', inv, '(' .. NOW_S, '(+inf')) do staying[id_of(m)] = true end
  for _, key in ipairs({ ready, inv }) do
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', '(+inf')) do
      if not staying[id_of(m)] then member[id_of(m)] = { key, m } end
    end
  end
  local all = redis.call('HGETALL', qkey(Q, 'msg'))
  local ids, stored, seqs = {}, {}, {}
  for i = 1, #all, 2 do
    local id = all[i]
    if id ~= '' and not staying[id] then
      local seq = parse_msg(all[i + 1])
      if seq then
        ids[#ids + 1] = id
        stored[id], seqs[id] = all[i + 1], tonumber(seq)
      end
    end
  end
  table.sort(ids, function(a, b) return seqs[a] < seqs[b] end)
  local groups = {}
  for _, id in ipairs(ids) do
    local m = member[id]
    if m then redis.call('ZREM', m[1], m[2]) end
    local group = select(7, parse_msg(stored[id]))
    if group ~= '' then groups[qkey(Q, 'g:' .. group)] = true end
  end
  -- A group's messages all move but an invisible head, which stays alone.
  for gkey, _ in pairs(groups) do
    local head = redis.call('LINDEX', gkey, 0)
    if head and staying[id_of(head)] then
      redis.call('LTRIM', gkey, 0, 0)
    else
      redis.call('DEL', gkey)
    end
  end
  if #ids > 0 then call_many('HDEL', qkey(Q, 'msg'), ids) end
  local moved, targets, infos = 0, {}, {}
  for _, id in ipairs(ids) do
    local v = stored[id]
    local src = select(6, parse_msg(v))
    local to, to_info = dest, dest_info
    if to == '' then
      to = src
      if to ~= '' then
        if infos[to] == nil then infos[to] = queue_info(to) or false end
        to_info = infos[to] or nil
      end
    end
    if to_info then
      local w = writes()
      local seq = seq_of(redis.call('INCR', qkey(to, 'seq')))
      local value, prio, group = restore(to_info, seq, v, '')
      insert(to, w, id, seq, value, NOW_S, prio, group, id)
      flush(to, w)
      moved = moved + 1
      targets[to] = true
    else
      -- Nowhere to go (its source queue is gone): it stays, visible now.
      local w = writes()
      local seq = seq_of(redis.call('INCR', qkey(Q, 'seq')))
      local value, prio, group = restore(info, seq, v, src, string.sub(v, 22, 36))
      insert(Q, w, id, seq, value, NOW_S, prio, group, (member[id] and member[id][2]) or id)
      flush(Q, w)
    end
  end
  local out = {'OK', tostring(moved)}
  for t, _ in pairs(targets) do table.insert(out, t) end
  return out
elseif op == 'stats' then
  sweep(Q, 1000)
  local ready_n = redis.call('ZCARD', qkey(Q, 'ready')) - 1
  local visible = ready_n + redis.call('ZCOUNT', qkey(Q, 'inv'), '-inf', NOW)
  local in_flight, delayed = 0, 0
  -- Invisible after a receive is in flight; never received yet is delayed.
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', qkey(Q, 'inv'), '(' .. NOW_S, '(+inf')) do
    if #m > 36 then
      in_flight = in_flight + 1
    else
      delayed = delayed + 1
    end
  end
  -- FIFO messages waiting behind their group's head count as visible, as in SQS.
  local total = redis.call('HLEN', qkey(Q, 'msg')) - 1
  local waiting = total - visible - in_flight - delayed
  if waiting > 0 then visible = visible + waiting end
  return {'OK', tostring(visible), tostring(in_flight), tostring(delayed)}
end
return {'BADOP'}
