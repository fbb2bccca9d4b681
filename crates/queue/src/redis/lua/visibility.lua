-- ARGV[4] message id, ARGV[5] receipt token, ARGV[6] new timeout (ms).
-- Answers {"OK"}, {"NOQUEUE"}, {"INVALID"} or {"NOTINFLIGHT"}.
if not queue_info(Q) then return {'NOQUEUE'} end
local id, tok, timeout = ARGV[4], ARGV[5], tonumber(ARGV[6])
local m = mkey(Q, id)
if redis.call('HGET', m, 'tok') ~= tok then return {'INVALID'} end
local vis = redis.call('ZSCORE', qkey(Q, 'inv'), id)
if not vis or tonumber(vis) <= NOW then return {'NOTINFLIGHT'} end
if timeout == 0 then
  redis.call('ZREM', qkey(Q, 'inv'), id)
  redis.call('ZADD', qkey(Q, 'ready'), redis.call('HGET', m, 'ord'), id)
  redis.call('HSET', m, 'vis', NOW)
  notify(Q)
else
  redis.call('ZADD', qkey(Q, 'inv'), NOW + timeout, id)
  redis.call('HSET', m, 'vis', NOW + timeout)
end
return {'OK'}
