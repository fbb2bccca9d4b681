-- ARGV[4..] receipt handles ("ID:rc:first:tok"). A handle is the message's member in inv
-- (or in ready, once its visibility timeout has passed and before it is received again);
-- one that is not (received again since, or deleted) deletes nothing, as in SQS.
-- Answers {"OK"}, {"NOQUEUE"} or {"LAYOUT"}.
local status = queue_status(Q)
if status then return {status} end
if #ARGV < 4 then return {'OK'} end
local inv = qkey(Q, 'inv')
-- A handle twice over is harmless: the second ZREM and HDEL of it remove nothing.
local found = redis.call('ZMSCORE', inv, unpack(ARGV, 4))
local ids, missing = {}, nil
for k = 1, #found do
  if found[k] then
    ids[#ids + 1] = id_of(ARGV[k + 3])
  else
    missing = missing or {}
    missing[#missing + 1] = ARGV[k + 3]
  end
end
if not missing then
  redis.call('ZREM', inv, unpack(ARGV, 4))
else
  if #ids > 0 then
    local live = {}
    for k = 1, #found do
      if found[k] then live[#live + 1] = ARGV[k + 3] end
    end
    redis.call('ZREM', inv, unpack(live))
  end
  local ready = qkey(Q, 'ready')
  local back = redis.call('ZMSCORE', ready, unpack(missing))
  local late = {}
  for k, h in ipairs(missing) do
    if back[k] then
      late[#late + 1] = h
      ids[#ids + 1] = id_of(h)
    end
  end
  if #late > 0 then redis.call('ZREM', ready, unpack(late)) end
end
if #ids > 0 then
  if is_fifo(Q) then
    local distinct, seen = {}, {}
    for _, id in ipairs(ids) do
      if not seen[id] then
        seen[id] = true
        distinct[#distinct + 1] = id
      end
    end
    remove_messages(Q, distinct, redis.call('HMGET', qkey(Q, 'msg'), unpack(distinct)))
  else
    redis.call('HDEL', qkey(Q, 'msg'), unpack(ids))
  end
end
return {'OK'}
