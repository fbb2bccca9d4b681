-- ARGV[4..] receipt handles ("ID:rc:first:tok"). A handle is the message's member in inv
-- (or in ready, once its visibility timeout has passed and before it is received again);
-- one that is not (received again since, or deleted) deletes nothing, as in SQS.
-- Answers {"OK"}, {"NOQUEUE"} or {"LAYOUT"}.
local status = queue_status(Q)
if status then return {status} end
local inv = qkey(Q, 'inv')
local handles, seen = {}, {}
for i = 4, #ARGV do
  local h = ARGV[i]
  if not seen[h] then
    seen[h] = true
    handles[#handles + 1] = h
  end
end
if #handles == 0 then return {'OK'} end
local found = redis.call('ZMSCORE', inv, unpack(handles))
local live, ids, missing = {}, {}, nil
for k, h in ipairs(handles) do
  if found[k] then
    live[#live + 1] = h
    ids[#ids + 1] = id_of(h)
  else
    missing = missing or {}
    missing[#missing + 1] = h
  end
end
if #live > 0 then redis.call('ZREM', inv, unpack(live)) end
if missing then
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
    remove_messages(Q, ids, redis.call('HMGET', qkey(Q, 'msg'), unpack(ids)))
  else
    redis.call('HDEL', qkey(Q, 'msg'), unpack(ids))
  end
end
return {'OK'}
