-- ARGV[4] message id, ARGV[5] receipt token, ARGV[6] new timeout (ms).
-- Answers {"OK"}, {"NOQUEUE"}, {"INVALID"} or {"NOTINFLIGHT"}.
if redis.call('EXISTS', qkey(Q, 'meta')) == 0 then return {'NOQUEUE'} end
local id, tok, timeout = ARGV[4], ARGV[5], tonumber(ARGV[6])
if not token_is(redis.call('HGET', qkey(Q, 'rcv'), id), tok) then return {'INVALID'} end
local vis = redis.call('ZSCORE', qkey(Q, 'inv'), id)
if not vis or tonumber(vis) <= NOW then return {'NOTINFLIGHT'} end
if timeout == 0 then
  local _, ord = parse_msg(redis.call('HGET', qkey(Q, 'msg'), id))
  redis.call('ZREM', qkey(Q, 'inv'), id)
  redis.call('ZADD', qkey(Q, 'ready'), ord, id)
  notify(Q)
else
  redis.call('ZADD', qkey(Q, 'inv'), int(NOW + timeout), id)
end
return {'OK'}
