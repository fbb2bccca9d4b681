-- Shared by every script. ARGV[1] is the key prefix, ARGV[2] the queue, ARGV[3] the time
-- (milliseconds since the Unix epoch, from the caller's clock).
--
-- Keys of queue Q under prefix P (layout 2):
--   P:queues          hash: queue name -> {"attributes": ..., "created_at": ...}
--   P:q:Q:meta        hash: the settings scripts use (retention, priority, dlq, mrc, created)
--                     and the layout of the queue's keys ("layout" = LAYOUT)
--   P:q:Q:seq         counter: the queue's sequence numbers
--   P:q:Q:msg         hash: message id -> "seq exp sent vis prio src group" and a newline,
--                     then what the client sent (body, attributes, deduplication id) as the
--                     client encodes it, which scripts store, move and return unread. seq
--                     is 20 digits and exp (the end of the message's retention) 15, with
--                     leading zeros, so a script reads exp without parsing the rest; vis is
--                     when the message first became visible, src the queue it was
--                     dead-lettered from. A send's caller writes all but seq. Set when the
--                     message enters the queue.
--   P:q:Q:ready       zset: deliverable messages, score = delivery order
--   P:q:Q:inv         zset: delayed or in-flight messages, score = visible-at time
--   P:q:Q:g:GROUP     list (FIFO): the group's messages in order, as the member each enters
--                     ready or inv with; only the head is in ready or inv, so a group's next
--                     message waits for the head's delete
--   P:q:Q:d:DEDUP     string (FIFO): "ID seq expires" of a deduplication id
--   P:q:Q:polling     string: present while some receiver long-polls the queue
-- Every message is in exactly one of ready, inv or (FIFO) behind its group's head. Its member
-- in ready and inv carries its receive state: "ID" before its first receive in this queue,
-- "ID:rc:first" after a dead-letter move (receive count, first receive), "ID:rc:first:tok"
-- once received (tok the receipt token). The last is the receipt handle itself, so a delete
-- is a ZREM of the handle, and a handle that is no longer the message's member (received
-- again since, or deleted) matches nothing. Ids are 36 characters (UUIDs).
-- Retention is enforced when messages are taken from ready or come due in inv (exp is in
-- the stored value), and by sweeps of the head of ready; there is no index by expiry.
-- A message is a field of one hash rather than a key of its own, so a script reads or writes
-- a whole batch of messages with one command. The hash keeps a field "" whose value is too
-- long for Redis's compact listpack encoding: in it every field lookup scans the whole hash,
-- which with a few hundred messages in flight costs more than the rest of the script; in the
-- hashtable encoding a lookup costs the same at any size. The sorted sets likewise keep a
-- member that long, of score +inf, and every read of them stops short of +inf ('(+inf') so
-- it is never taken for a message.
-- Notifications of newly deliverable messages go to channel P:notify, payload the queue,
-- only while a receiver is long-polling: most sends then cost no publish at all.
local P = ARGV[1]
local Q = ARGV[2]
local NOW = tonumber(ARGV[3])
local NOW_S = ARGV[3]
local LAYOUT = '2'

local function qkey(q, suffix) return P .. ':q:' .. q .. ':' .. suffix end
local function is_fifo(q) return string.sub(q, -5) == '.fifo' end
-- Integers as digits: Lua's own formatting switches to exponents past 14 digits, and '%d'
-- formats as an integer, much faster than a float with '%.0f'.
local function int(x) return string.format('%d', x) end
-- The end of retention as stored: fixed width, so reading it back is a substring.
local function exp_of(x) return string.format('%015d', x) end
local function seq_of(x) return string.format('%020d', x) end
local function expired(stored) return tonumber(string.sub(stored, 22, 36)) <= NOW end
local function id_of(member) return string.sub(member, 1, 36) end

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

-- The entries that keep a queue's hash and sorted sets in their big encodings (see
-- above). Built only here: a kilobyte made on every script run would cost as much as the
-- rest of the prologue.
local function keep_big_encodings(q)
  local sentinel = string.rep('-', 1024)
  redis.call('HSET', qkey(q, 'msg'), '', sentinel)
  for _, z in ipairs({ 'ready', 'inv' }) do redis.call('ZADD', qkey(q, z), '+inf', sentinel) end
end

-- Whether each queue read so far orders by priority.
local priorities = {}

-- What the scripts need of a queue's settings, kept flat beside the JSON (no decoding):
-- nil when there is no such queue, false when its keys are in another layout.
local function queue_info(q)
  local f = redis.call('HMGET', qkey(q, 'meta'), 'retention', 'priority', 'dlq', 'mrc', 'created', 'layout')
  if not f[1] then return nil end
  if f[6] ~= LAYOUT then return false end
  priorities[q] = f[2] == '1'
  return { retention = tonumber(f[1]), priority = f[2] == '1', dlq = f[3], max_receive_count = tonumber(f[4]),
    created_at = tonumber(f[5]) }
end

-- The status of a queue for scripts that need no settings: nil when usable.
local function queue_status(q)
  local layout = redis.call('HGET', qkey(q, 'meta'), 'layout')
  if not layout then
    if redis.call('EXISTS', qkey(q, 'meta')) == 0 then return 'NOQUEUE' end
    return 'LAYOUT'
  end
  if layout ~= LAYOUT then return 'LAYOUT' end
  return nil
end

-- Whether queue q orders by priority, looked up once per script run.
local function has_priority(q)
  if priorities[q] == nil then priorities[q] = redis.call('HGET', qkey(q, 'meta'), 'priority') == '1' end
  return priorities[q]
end

-- The delivery order (ready's score) of a message of queue q with sequence number seq and
-- priority prio (strings).
local function order_key(q, prio, seq)
  if has_priority(q) then
    return int((255 - tonumber(prio)) * 17592186044416 + tonumber(seq))
  end
  return seq
end

-- seq, exp, sent, vis, prio, src, group of a message's stored value.
local function parse_msg(s)
  return string.match(s, '^(%d+) (%d+) (%d+) (%d+) (%d+) (%S*) (%S*)\n')
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

-- A FIFO group's new head becomes deliverable (or waits for its delay); heads past their
-- retention go, and the next one is tried.
local function promote(q, gkey)
  while true do
    local head = redis.call('LINDEX', gkey, 0)
    if not head then return end
    local id = id_of(head)
    local stored = redis.call('HGET', qkey(q, 'msg'), id)
    if stored and not expired(stored) then
      local seq, _, _, vis, prio = parse_msg(stored)
      if tonumber(vis) <= NOW then
        redis.call('ZADD', qkey(q, 'ready'), order_key(q, prio, seq), head)
        notify(q)
      else
        redis.call('ZADD', qkey(q, 'inv'), vis, head)
      end
      return
    end
    redis.call('LPOP', gkey)
    if stored then redis.call('HDEL', qkey(q, 'msg'), id) end
  end
end

-- Removes messages (distinct ids, all present, their stored values in `stored`) from queue
-- q once their members have left ready and inv; in a FIFO queue each one's group moves on
-- to its next message.
local function remove_messages(q, ids, stored)
  if is_fifo(q) then
    local advanced = {}
    for k, id in ipairs(ids) do
      local group = select(7, parse_msg(stored[k]))
      local gkey = qkey(q, 'g:' .. group)
      local head = redis.call('LINDEX', gkey, 0)
      if head and id_of(head) == id then
        redis.call('LPOP', gkey)
        advanced[gkey] = true
      else
        for _, el in ipairs(redis.call('LRANGE', gkey, 0, -1)) do
          if id_of(el) == id then
            redis.call('LREM', gkey, 1, el)
            break
          end
        end
      end
    end
    -- Only once every removed message has left its group, so no removed one is promoted.
    call_many('HDEL', qkey(q, 'msg'), ids)
    for gkey, _ in pairs(advanced) do promote(q, gkey) end
    return
  end
  call_many('HDEL', qkey(q, 'msg'), ids)
end

-- New messages of one queue, gathered so that the hash and each sorted set is written once.
local function writes()
  return { msg = {}, ready = {}, inv = {} }
end

local function push2(t, a, b)
  local n = #t
  t[n + 1] = a
  t[n + 2] = b
end

-- Stores a message entering queue q in w and places it: ready, or inv when vis (a string)
-- is later than now, or behind its FIFO group's head. Strings: seq (as seq_of formats it),
-- stored (the whole stored value), vis, prio, group, member (its member in ready or inv: the
-- id, or "ID:rc:first" when received before).
local function insert(q, w, id, seq, stored, vis, prio, group, member)
  local ord = order_key(q, prio, seq)
  push2(w.msg, id, stored)
  if group ~= '' then
    local len = redis.call('RPUSH', qkey(q, 'g:' .. group), member)
    if len > 1 then return end
  end
  if vis == NOW_S or tonumber(vis) <= NOW then
    push2(w.ready, ord, member)
  else
    push2(w.inv, vis, member)
  end
end

local function flush(q, w)
  if #w.msg > 0 then call_many('HSET', qkey(q, 'msg'), w.msg) end
  if #w.ready > 0 then
    call_many('ZADD', qkey(q, 'ready'), w.ready)
    notify(q)
  end
  if #w.inv > 0 then call_many('ZADD', qkey(q, 'inv'), w.inv) end
end

-- Moves a message (its member already out of ready and inv, `stored` its value) from queue
-- `from` to queue `to`, visible now. Dead-lettering records the source and keeps the receive
-- count and first receive (rc, a number, and fr, a string); a redrive clears them. The
-- receipt token goes: no handle of the old queue deletes the message in the new one.
-- The stored value of a message entering queue q (retention from its settings `info`), or
-- staying (`exp` its end of retention), visible now, with sequence number seq (a string).
local function restore(info, seq, old, src, exp)
  local _, _, sent, _, prio, _, group = parse_msg(old)
  local blob = string.sub(old, string.find(old, '\n', 1, true) + 1)
  exp = exp or exp_of(tonumber(sent) + info.retention)
  return seq .. ' ' .. exp .. ' ' .. sent .. ' ' .. NOW_S .. ' ' .. prio .. ' ' .. src .. ' ' .. group .. '\n' .. blob,
    prio, group
end

local function move(from, id, stored, to, to_info, dead_letter, rc, fr)
  remove_messages(from, { id }, { stored })
  local src, member = '', id
  if dead_letter then
    src = from
    if rc and rc > 0 then member = id .. ':' .. int(rc) .. ':' .. fr end
  end
  local w = writes()
  local seq = seq_of(redis.call('INCR', qkey(to, 'seq')))
  local value, prio, group = restore(to_info, seq, stored, src)
  insert(to, w, id, seq, value, NOW_S, prio, group, member)
  flush(to, w)
end

-- Removes messages past their retention from the head of ready, up to `limit` examined,
-- a batch at a time while a batch finds some (in a queue without priorities the oldest
-- messages lead, so the expired ones are a prefix of ready).
local function sweep(q, limit)
  local ready, seen = qkey(q, 'ready'), 0
  while seen < limit do
    local ms = redis.call('ZRANGEBYSCORE', ready, '-inf', '(+inf', 'LIMIT', seen, 100)
    if #ms == 0 then return end
    seen = seen + #ms
    local ids = {}
    for k, m in ipairs(ms) do ids[k] = id_of(m) end
    local stored = redis.call('HMGET', qkey(q, 'msg'), unpack(ids))
    local gone, gone_stored, members = {}, {}, {}
    for k, v in ipairs(stored) do
      if v and expired(v) then
        local n = #gone + 1
        gone[n] = ids[k]
        gone_stored[n] = v
        members[n] = ms[k]
      end
    end
    if #gone == 0 then return end
    redis.call('ZREM', ready, unpack(members))
    seen = seen - #gone
    remove_messages(q, gone, gone_stored)
  end
end
