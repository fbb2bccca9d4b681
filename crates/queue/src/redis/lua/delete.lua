-- ARGV[4..] pairs of message id and receipt token. A token that is not the message's
-- latest (received again since) deletes nothing, as in SQS. Answers {"OK"} or {"NOQUEUE"}.
if redis.call('EXISTS', qkey(Q, 'meta')) == 0 then return {'NOQUEUE'} end
local ids, toks = {}, {}
for i = 4, #ARGV, 2 do
  table.insert(ids, ARGV[i])
  table.insert(toks, ARGV[i + 1])
end
local rcvs = hmget(qkey(Q, 'rcv'), ids)
local gone, seen = {}, {}
for k, id in ipairs(ids) do
  if not seen[id] and token_is(rcvs[k], toks[k]) then
    seen[id] = true
    table.insert(gone, id)
  end
end
if #gone > 0 then remove_messages(Q, gone) end
return {'OK'}
