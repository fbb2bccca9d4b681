-- Shared by every script. ARGV[1] is the key prefix, ARGV[2] the queue, ARGV[3] the time
-- (milliseconds since the Unix epoch, from the caller's clock).
--
-- Keys of queue Q under prefix P:
--   P:queues          hash: queue name -> {"attributes": ..., "created_at": ...}
--   P:q:Q:meta        hash: the settings scripts use (retention, priority, dlq, mrc, created)
--   P:q:Q:seq         counter: the queue's sequence numbers
--   P:q:Q:msg         hash: message id -> "seq ord sent vis prio src group" and a newline,
--                     then what the client sent (body, attributes, deduplication id) as the
--                     client encodes it, which scripts store, move and return unread. ord is
--                     the delivery order, vis when the message first became visible, src the
--                     queue it was dead-lettered from. Set when the message enters the queue.
--   P:q:Q:rcv         hash: message id -> "rc fr tok" (receive count, first receive, receipt
--                     token), present once the message has been received
--   P:q:Q:ready       zset: deliverable messages, score = delivery order
--   P:q:Q:inv         zset: delayed or in-flight messages, score = visible-at time
--   P:q:Q:exp         zset: every message, score = end of its retention period
--   P:q:Q:g:GROUP     list (FIFO): the group's messages in order; only the head is in
--                     ready or inv, so a group's next message waits for the head's delete
--   P:q:Q:d:DEDUP     string (FIFO): "ID seq expires" of a deduplication id
--   P:q:Q:polling     string: present while some receiver long-polls the queue
-- A message is a field in two hashes rather than a key of its own, so a script reads or
-- writes a whole batch of messages with one command per hash. Both hashes keep a field ""
-- whose value is too long for Redis's compact listpack encoding: in it every field lookup
-- scans the whole hash, which with a few hundred messages in flight costs more than the rest
-- of the script; in the hashtable encoding a lookup costs the same at any size. The sorted
-- sets likewise keep a member that long, of score +inf, and every read of them stops short
-- of +inf ('(+inf') so it is never taken for a message.
-- Notifications of newly deliverable messages go to channel P:notify, payload the queue,
-- only while a receiver is long-polling: most sends then cost no publish at all.
local P = ARGV[1]
local Q = ARGV[2]
local NOW = tonumber(ARGV[3])
local NOW_S = ARGV[3]

local function qkey(q, suffix) return P .. ':q:' .. q .. ':' .. suffix end
local function is_fifo(q) return string.sub(q, -5) == '.fifo' end
-- Integers as digits: Lua's own formatting switches to exponents past 14 digits, and '%d'
-- formats as an integer, much faster than a float with '%.0f'.
local function int(x) return string.format('%d', x) end

-- Commands over many members, split so `unpack` stays within Lua's stack.
local function call_many(cmd, key, list, out)
  for i = 1, #list, 1000 do
    local r = redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
    if out then
      for _, v in ipairs(r) do table.insert(out, v) end
    end
  end
  return out
end
local function hmget(key, ids) return call_many('HMGET', key, ids, {}) end

-- The entries that keep a queue's hashes and sorted sets in their big encodings (see
-- above). Built only here: a kilobyte made on every script run would cost as much as the
-- rest of the prologue.
local function keep_big_encodings(q)
  local sentinel = string.rep('-', 1024)
  redis.call('HSET', qkey(q, 'msg'), '', sentinel)
  redis.call('HSET', qkey(q, 'rcv'), '', sentinel)
  for _, z in ipairs({ 'ready', 'inv', 'exp' }) do redis.call('ZADD', qkey(q, z), '+inf', sentinel) end
end

-- What the scripts need of a queue's settings, kept flat beside the JSON (no decoding).
local function queue_info(q)
  local f = redis.call('HMGET', qkey(q, 'meta'), 'retention', 'priority', 'dlq', 'mrc', 'created')
  if not f[1] then return nil end
  return { retention = tonumber(f[1]), priority = f[2] == '1', dlq = f[3], max_receive_count = tonumber(f[4]),
    created_at = tonumber(f[5]) }
end

-- The delivery order of a message with sequence number seq (a string).
local function order_key(info, prio, seq)
  if info.priority then
    return int((255 - tonumber(prio)) * 17592186044416 + tonumber(seq))
  end
  return seq
end

-- seq, ord, sent, vis, prio, src, group of a message's stored value.
local function parse_msg(s)
  return string.match(s, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S*) (%S*)\n')
end

-- Whether a message's "rc fr tok" ends in tok (16 hex digits: no other part of it can),
-- found without building strings.
local function token_is(rcv, tok)
  return rcv and #tok == 16 and string.find(rcv, tok, -16, true) ~= nil
end

local polling = {}
local function notify(q)
  -- Looked up once per script run: a batch of sends publishes at most once.
  if polling[q] == nil then
    polling[q] = redis.call('EXISTS', qkey(q, 'polling')) == 1
  end
  if polling[q] then
    redis.call('PUBLISH', P .. ':notify', q)
    polling[q] = false
  end
end

-- A FIFO group's new head becomes deliverable (or waits for its delay).
local function promote(q, gkey)
  local head = redis.call('LINDEX', gkey, 0)
  if not head then return end
  local _, ord, _, vis = parse_msg(redis.call('HGET', qkey(q, 'msg'), head))
  if tonumber(vis) <= NOW then
    redis.call('ZADD', qkey(q, 'ready'), ord, head)
    notify(q)
  else
    redis.call('ZADD', qkey(q, 'inv'), vis, head)
  end
end

-- Removes messages (distinct ids, all present) from queue q; in a FIFO queue each one's
-- group moves on to its next message.
local function remove_messages(q, ids)
  if is_fifo(q) then
    local msgs = hmget(qkey(q, 'msg'), ids)
    local advanced = {}
    for k, id in ipairs(ids) do
      local group = select(7, parse_msg(msgs[k]))
      local gkey = qkey(q, 'g:' .. group)
      if redis.call('LINDEX', gkey, 0) == id then
        redis.call('LPOP', gkey)
        advanced[gkey] = true
      else
        redis.call('LREM', gkey, 1, id)
      end
    end
    -- Only once every removed message has left its group, so no removed one is promoted.
    for gkey, _ in pairs(advanced) do promote(q, gkey) end
  end
  call_many('HDEL', qkey(q, 'msg'), ids)
  call_many('HDEL', qkey(q, 'rcv'), ids)
  call_many('ZREM', qkey(q, 'exp'), ids)
  -- A received message is normally in inv; only when every one was there can ready be spared.
  local from_inv = 0
  for i = 1, #ids, 1000 do
    from_inv = from_inv + redis.call('ZREM', qkey(q, 'inv'), unpack(ids, i, math.min(i + 999, #ids)))
  end
  if from_inv < #ids then call_many('ZREM', qkey(q, 'ready'), ids) end
end

-- New messages of one queue, gathered so that each hash and sorted set is written once.
local function writes()
  return { msg = {}, rcv = {}, exp = {}, ready = {}, inv = {} }
end

local function push2(t, a, b)
  local n = #t
  t[n + 1] = a
  t[n + 2] = b
end

-- Stores a message entering queue q in w and places it: ready, or inv when vis (a string)
-- is later than now, or behind its FIFO group's head. Strings: seq, sent, exp (end of
-- retention), vis, prio, src, group, blob (the client's part); rcv when received before.
local function insert(q, info, w, id, seq, sent, exp, vis, prio, src, group, blob, rcv)
  local ord = order_key(info, prio, seq)
  push2(w.msg, id, seq .. ' ' .. ord .. ' ' .. sent .. ' ' .. vis .. ' ' .. prio .. ' ' .. src .. ' ' .. group .. '\n'
    .. blob)
  push2(w.exp, exp, id)
  if rcv then push2(w.rcv, id, rcv) end
  if group ~= '' then
    local len = redis.call('RPUSH', qkey(q, 'g:' .. group), id)
    if len > 1 then return end
  end
  if vis == NOW_S or tonumber(vis) <= NOW then
    push2(w.ready, ord, id)
  else
    push2(w.inv, vis, id)
  end
end

local function flush(q, w)
  if #w.msg > 0 then call_many('HSET', qkey(q, 'msg'), w.msg) end
  if #w.rcv > 0 then call_many('HSET', qkey(q, 'rcv'), w.rcv) end
  if #w.exp > 0 then call_many('ZADD', qkey(q, 'exp'), w.exp) end
  if #w.ready > 0 then
    call_many('ZADD', qkey(q, 'ready'), w.ready)
    notify(q)
  end
  if #w.inv > 0 then call_many('ZADD', qkey(q, 'inv'), w.inv) end
end

-- Moves a message from queue `from` to queue `to`, visible now. Dead-lettering records the
-- source and keeps the receive count; a redrive clears both.
local function move(from, id, to, to_info, dead_letter)
  local stored = redis.call('HGET', qkey(from, 'msg'), id)
  local _, _, sent, _, prio, _, group = parse_msg(stored)
  local blob = string.sub(stored, string.find(stored, '\n', 1, true) + 1)
  local rcv = redis.call('HGET', qkey(from, 'rcv'), id)
  remove_messages(from, { id })
  local src, keep = '', nil
  if dead_letter then
    src = from
    -- The receipt token goes: no handle of the old queue deletes the message in the new one.
    if rcv then keep = string.match(rcv, '^(%d+ %d+) ') .. ' -' end
  end
  local w = writes()
  insert(to, to_info, w, id, int(redis.call('INCR', qkey(to, 'seq'))), sent, int(tonumber(sent) + to_info.retention),
    NOW_S, prio, src, group, blob, keep)
  flush(to, w)
end
