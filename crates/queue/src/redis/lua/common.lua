-- Shared by every script. ARGV[1] is the key prefix, ARGV[2] the queue, ARGV[3] the time
-- (milliseconds since the Unix epoch, from the caller's clock).
--
-- Keys of queue Q under prefix P:
--   P:queues          hash: queue name -> {"attributes": ..., "created_at": ...}
--   P:q:Q:meta        hash: the settings scripts use (retention, priority, dlq, mrc, created)
--   P:q:Q:seq         counter: the queue's sequence numbers
--   P:q:Q:m:ID        hash: one message (body, attrs, group, dedup, prio, sent, vis, exp,
--                     rc = receive count, fr = first receive, tok = receipt token, seq, ord, src)
--   P:q:Q:ready       zset: deliverable messages, score = delivery order
--   P:q:Q:inv         zset: delayed or in-flight messages, score = visible-at time
--   P:q:Q:exp         zset: every message, score = end of its retention period
--   P:q:Q:g:GROUP     list (FIFO): the group's messages in order; only the head is in
--                     ready or inv, so a group's next message waits for the head's delete
--   P:q:Q:d:DEDUP     string (FIFO): "ID seq expires" of a deduplication id
--   P:q:Q:polling     string: present while some receiver long-polls the queue
-- Notifications of newly deliverable messages go to channel P:notify, payload the queue,
-- only while a receiver is long-polling: most sends then cost no publish at all.
local P = ARGV[1]
local Q = ARGV[2]
local NOW = tonumber(ARGV[3])

local function qkey(q, suffix) return P .. ':q:' .. q .. ':' .. suffix end
local function mkey(q, id) return P .. ':q:' .. q .. ':m:' .. id end
local function is_fifo(q) return string.sub(q, -5) == '.fifo' end

-- What the scripts need of a queue's settings, kept flat beside the JSON (no decoding).
local function queue_info(q)
  local f = redis.call('HMGET', qkey(q, 'meta'), 'retention', 'priority', 'dlq', 'mrc', 'created')
  if not f[1] then return nil end
  return { retention = tonumber(f[1]), priority = f[2] == '1', dlq = f[3], max_receive_count = tonumber(f[4]),
    created_at = tonumber(f[5]) }
end

local function order_key(info, prio, seq)
  if info.priority then
    return string.format('%.0f', (255 - prio) * 17592186044416 + seq)
  end
  return string.format('%.0f', seq)
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

-- Puts a message where receivers find it: ready, inv, or behind its FIFO group's head.
local function place(q, id, vis, ord, group)
  if is_fifo(q) then
    local len = redis.call('RPUSH', qkey(q, 'g:' .. group), id)
    if len > 1 then return end
  end
  if vis <= NOW then
    redis.call('ZADD', qkey(q, 'ready'), ord, id)
    notify(q)
  else
    redis.call('ZADD', qkey(q, 'inv'), vis, id)
  end
end

-- A FIFO group's new head becomes deliverable (or waits for its delay).
local function promote(q, gkey)
  local head = redis.call('LINDEX', gkey, 0)
  if not head then return end
  local m = mkey(q, head)
  local vis = tonumber(redis.call('HGET', m, 'vis'))
  if vis <= NOW then
    redis.call('ZADD', qkey(q, 'ready'), redis.call('HGET', m, 'ord'), head)
    notify(q)
  else
    redis.call('ZADD', qkey(q, 'inv'), vis, head)
  end
end

-- `group` may be given when the caller has read it already.
local function remove_message(q, id, group)
  local m = mkey(q, id)
  if group == nil then group = redis.call('HGET', m, 'group') end
  redis.call('DEL', m)
  redis.call('ZREM', qkey(q, 'ready'), id)
  redis.call('ZREM', qkey(q, 'inv'), id)
  redis.call('ZREM', qkey(q, 'exp'), id)
  if group and group ~= '' then
    local gkey = qkey(q, 'g:' .. group)
    if redis.call('LINDEX', gkey, 0) == id then
      redis.call('LPOP', gkey)
      promote(q, gkey)
    else
      redis.call('LREM', gkey, 1, id)
    end
  end
end

-- Stores a new message of queue q and places it. f holds its fields.
local function insert(q, info, id, f)
  local seq = redis.call('INCR', qkey(q, 'seq'))
  local ord = order_key(info, tonumber(f.prio), seq)
  local exp = tonumber(f.sent) + info.retention
  redis.call('HSET', mkey(q, id), 'body', f.body, 'attrs', f.attrs, 'group', f.group, 'dedup', f.dedup,
    'prio', f.prio, 'sent', f.sent, 'vis', f.vis, 'exp', exp, 'rc', f.rc, 'fr', f.fr, 'tok', '',
    'seq', seq, 'ord', ord, 'src', f.src)
  redis.call('ZADD', qkey(q, 'exp'), exp, id)
  place(q, id, tonumber(f.vis), ord, f.group)
  return seq
end

-- Moves a message from queue `from` to queue `to`, visible now. Dead-lettering records the
-- source; a redrive clears it and the receive count.
local function move(from, id, to, to_info, dead_letter)
  local m = mkey(from, id)
  local f = {}
  local raw = redis.call('HGETALL', m)
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  remove_message(from, id)
  f.vis = NOW
  if dead_letter then
    f.src = from
  else
    f.src = ''
    f.rc = 0
    f.fr = ''
  end
  insert(to, to_info, id, f)
end
