-- ARGV[4..] pairs of message id and receipt token. A token that is not the message's
-- latest (received again since) deletes nothing, as in SQS. Answers {"OK"} or {"NOQUEUE"}.
if not queue_info(Q) then return {'NOQUEUE'} end
local plain, keys = {}, {}
for i = 4, #ARGV, 2 do
  local id, tok = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', mkey(Q, id), 'tok', 'group')
  if f[1] == tok then
    if f[2] and f[2] ~= '' then
      -- FIFO: the group's next message may become deliverable.
      remove_message(Q, id, f[2])
    elseif not keys[id] then
      table.insert(plain, id)
      keys[id] = mkey(Q, id)
    end
  end
end
if #plain > 0 then
  local hashes = {}
  for _, id in ipairs(plain) do table.insert(hashes, keys[id]) end
  redis.call('DEL', unpack(hashes))
  redis.call('ZREM', qkey(Q, 'inv'), unpack(plain))
  redis.call('ZREM', qkey(Q, 'ready'), unpack(plain))
  redis.call('ZREM', qkey(Q, 'exp'), unpack(plain))
end
return {'OK'}
