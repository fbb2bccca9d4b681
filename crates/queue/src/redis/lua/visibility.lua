-- ARGV[4] receipt handle ("ID:rc:first:tok"), ARGV[5] new timeout (ms).
-- Answers {"OK"}, {"NOQUEUE"}, {"LAYOUT"}, {"INVALID"} or {"NOTINFLIGHT"}.
local status = queue_status(Q)
if status then return {status} end
local handle, timeout = ARGV[4], tonumber(ARGV[5])
local inv = qkey(Q, 'inv')
local vis = redis.call('ZSCORE', inv, handle)
if not vis then
  -- Its visibility timeout passed and it is back in ready, not received since.
  if redis.call('ZSCORE', qkey(Q, 'ready'), handle) then return {'NOTINFLIGHT'} end
  return {'INVALID'}
end
if tonumber(vis) <= NOW then return {'NOTINFLIGHT'} end
if timeout == 0 then
  local stored = redis.call('HGET', qkey(Q, 'msg'), id_of(handle))
  redis.call('ZREM', inv, handle)
  if stored then
    local seq, _, _, _, prio = parse_msg(stored)
    redis.call('ZADD', qkey(Q, 'ready'), order_key(Q, prio, seq), handle)
    notify(Q)
  end
else
  redis.call('ZADD', inv, 'XX', int(NOW + timeout), handle)
end
return {'OK'}
