-- ARGV[4..] pairs of message id and receipt token. A token that is not the message's
-- latest (received again since) deletes nothing, as in SQS. Answers {"OK"} or {"NOQUEUE"}.
if not queue_info(Q) then return {'NOQUEUE'} end
for i = 4, #ARGV, 2 do
  local id, tok = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', mkey(Q, id), 'tok', 'group')
  if f[1] == tok then
    remove_message(Q, id, f[2])
  end
end
return {'OK'}
