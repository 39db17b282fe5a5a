"""The Redis store's Lua scripts: each runs atomically on the server in one round trip.

Keys: `<ns>:epoch`, `<ns>:clock` (hash now/offset), `<ns>:secret`; per epoch, under `<ns>:<e>:`:
`c` (counters), `m` (rules revision and pending webhooks: what every read needs), `t:<id>` (a
task: rec, at, polls, canceled_at, forced, forced_at, failure, al), `tasks` (zset by arrival),
`alias`, `j` (journal list), `rules`/`rorder`/`rc`, `claims`, `w:<key>` (rate windows), `h`/`hp`
(webhooks, the pending ones), `hl`/`ho` (delivery leases: until, by score; their owners).
"""

# The epoch, set from the server's time (milliseconds) when there is none: a server that lost
# its data starts an epoch no worker has seen, which every worker takes for a reset. When the
# worker asking has seen an epoch before (`seen`), the data was lost, not fresh: the new epoch
# also becomes the store's `lineage`, which seeded ids fold in, so ids handed out before the
# loss (and perhaps still polled) are never handed out again. A fresh store has no lineage:
# the same seed gives the same ids run after run.
_EPOCH = """
local e = redis.call('GET', ns .. ':epoch')
if not e then
  local t = redis.call('TIME')
  e = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  redis.call('SET', ns .. ':epoch', e)
  if seen ~= '' then redis.call('SET', ns .. ':lineage', e) end
end
"""
SYNC = """
local ns, tid, want, start, seen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] or ''
""" + _EPOCH + """
local clock = redis.call('HMGET', ns .. ':clock', 'now', 'offset')
if not clock[1] then
  redis.call('HSETNX', ns .. ':clock', 'now', start)
  redis.call('HSETNX', ns .. ':clock', 'offset', '0')
  clock = redis.call('HMGET', ns .. ':clock', 'now', 'offset')
end
local p = ns .. ':' .. e .. ':'
local c = redis.call('HMGET', p .. 'm', 'rules_rev', 'hooks_pending')
local row = {}
if tid ~= '' then
  if want == '1' then
    row = redis.call('HMGET', p .. 't:' .. tid, 'at', 'polls', 'canceled_at', 'forced',
                     'forced_at', 'failure', 'rec')
  else
    row = redis.call('HMGET', p .. 't:' .. tid, 'at', 'polls', 'canceled_at', 'forced',
                     'forced_at', 'failure')
  end
end
return {e, clock[1], clock[2], c[1] or '0', c[2] or '0', row}
"""
TASK = """
local k = KEYS[1]
if ARGV[1] == '1' then
  return redis.call('HMGET', k, 'at', 'polls', 'canceled_at', 'forced', 'forced_at', 'failure',
                    'rec')
end
return redis.call('HMGET', k, 'at', 'polls', 'canceled_at', 'forced', 'forced_at', 'failure')
"""
PUT_TASKS = """
local p, out, order, n = ARGV[1], {}, {}, 0
for i = 2, #ARGV, 3 do
  local k = p .. 't:' .. ARGV[i]
  if redis.call('EXISTS', k) == 1 then
    table.insert(out, 0)
  else
    redis.call('HSET', k, 'rec', ARGV[i + 2], 'at', ARGV[i + 1], 'polls', 0)
    n = n + 1
    table.insert(order, ARGV[i])
    table.insert(out, 1)
  end
end
if n > 0 then
  -- Scored by arrival, in the batch's order: oldest first.
  local last = redis.call('HINCRBY', p .. 'c', 'tseq', n)
  local args = {}
  for j, id in ipairs(order) do
    table.insert(args, last - n + j)
    table.insert(args, id)
  end
  redis.call('ZADD', p .. 'tasks', unpack(args))
end
return out
"""
REMOVE = """
local p, n = ARGV[1], 0
for i = 2, #ARGV do
  local k = p .. 't:' .. ARGV[i]
  local al = redis.call('HGET', k, 'al')
  if al then redis.call('HDEL', p .. 'alias', al) end
  n = n + redis.call('DEL', k)
  redis.call('ZREM', p .. 'tasks', ARGV[i])
end
return n
"""
HSET_IF = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
POLL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'polls', ARGV[1])
"""
BATCH = """
local p, maxlen, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if n > 0 then
  local last = redis.call('HINCRBY', p .. 'c', 'jseq', n)
  local items = {}
  for i = 1, n do
    items[#items + 1] = (last - n + i) .. '|' .. ARGV[3 + i]
    if #items == 500 then  -- one RPUSH per 500 entries (unpack has a stack limit)
      redis.call('RPUSH', p .. 'j', unpack(items))
      items = {}
    end
  end
  if #items > 0 then redis.call('RPUSH', p .. 'j', unpack(items)) end
  redis.call('LTRIM', p .. 'j', -maxlen, -1)
end
for i = 4 + n, #ARGV, 2 do
  local k = p .. 't:' .. ARGV[i]
  if redis.call('EXISTS', k) == 1 then redis.call('HINCRBY', k, 'polls', ARGV[i + 1]) end
end
return 1
"""
RULE_PUT = """
local p = ARGV[1]
redis.call('HSET', p .. 'rules', ARGV[2], ARGV[3])
redis.call('ZADD', p .. 'rorder', redis.call('HINCRBY', p .. 'c', 'rpos', 1), ARGV[2])
redis.call('HINCRBY', p .. 'm', 'rules_rev', 1)
return 1
"""
RULES_SEED = """
-- The option's rules for an epoch, by whichever worker offers them first: the claim and the
-- rules in one step, so no worker reads the epoch's rules half loaded.
local p, n = ARGV[1], tonumber(ARGV[2])
if redis.call('HSETNX', p .. 'claims', 'rules-loaded', 1) == 0 then return 0 end
for i = 1, n do
  local id = ARGV[1 + 2 * i]
  redis.call('HSET', p .. 'rules', id, ARGV[2 + 2 * i])
  redis.call('ZADD', p .. 'rorder', redis.call('HINCRBY', p .. 'c', 'rpos', 1), id)
end
if n > 0 then
  redis.call('HINCRBY', p .. 'c', 'rules', n)
  redis.call('HINCRBY', p .. 'm', 'rules_rev', 1)
end
return 1
"""
RULE_REMOVE = """
local p = ARGV[1]
local gone = redis.call('HDEL', p .. 'rules', ARGV[2])
redis.call('ZREM', p .. 'rorder', ARGV[2])
redis.call('HINCRBY', p .. 'm', 'rules_rev', 1)
return gone
"""
RULES_CLEAR = """
local p = ARGV[1]
redis.call('DEL', p .. 'rules', p .. 'rorder', p .. 'rc')
redis.call('HINCRBY', p .. 'm', 'rules_rev', 1)
return 1
"""
RULES = """
local p, out = ARGV[1], {}
for _, id in ipairs(redis.call('ZRANGE', p .. 'rorder', 0, -1)) do
  local data = redis.call('HGET', p .. 'rules', id)
  if data then
    local m = redis.call('HGET', p .. 'rc', id .. ':matched') or '0'
    local a = redis.call('HGET', p .. 'rc', id .. ':applied') or '0'
    table.insert(out, {data, m, a})
  end
end
return out
"""
RULE_COUNT = """
local p, id, col, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HEXISTS', p .. 'rules', id) == 0 then return 0 end
local f = id .. ':' .. col
if limit ~= '' and tonumber(redis.call('HGET', p .. 'rc', f) or '0') >= tonumber(limit) then
  return 0
end
return redis.call('HINCRBY', p .. 'rc', f, 1)
"""
ADMIT = """
local k, now, qps, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
redis.call('ZREMRANGEBYSCORE', k, '-inf', now - 1.0)
if redis.call('ZCARD', k) >= qps then return 0 end
redis.call('ZADD', k, now, member)
-- Kept two minutes idle: a family may count a window of up to a minute (Backend.admit
-- window_s, time read in units of the window).
redis.call('PEXPIRE', k, 120000)
return 1
"""
HOOK_CLAIM = """
-- Claim a due webhook with a lease (ARGV[3], store time) held by ARGV[4] (outbox.py).
local p = ARGV[1]
if redis.call('SREM', p .. 'hp', ARGV[2]) == 1 then
  redis.call('HINCRBY', p .. 'm', 'hooks_pending', -1)
  if ARGV[3] and ARGV[3] ~= '' then
    redis.call('ZADD', p .. 'hl', ARGV[3], ARGV[2])
    redis.call('HSET', p .. 'ho', ARGV[2], ARGV[4])
  end
  return 1
end
return 0
"""
HOOK_SAVE = """
-- Store a webhook's outcome and renew its lease (ARGV[4]) or release it (''), unless another
-- worker owns it now (its lease ran out and was taken over): then 0, nothing written.
local p, seq = ARGV[1], ARGV[2]
local owner = redis.call('HGET', p .. 'ho', seq)
if owner and owner ~= ARGV[5] then return 0 end
redis.call('HSET', p .. 'h', seq, ARGV[3])
if owner then
  if ARGV[4] == '' then
    redis.call('ZREM', p .. 'hl', seq)
  else
    redis.call('ZADD', p .. 'hl', ARGV[4], seq)
  end
end
return 1
"""
HOOK_RECLAIM = """
-- Take over a delivery whose lease ran out (score <= now): a new lease for ARGV[5]; the record.
local p, seq = ARGV[1], ARGV[2]
local lease = redis.call('ZSCORE', p .. 'hl', seq)
if not lease or tonumber(lease) > tonumber(ARGV[3]) then return false end
redis.call('ZADD', p .. 'hl', ARGV[4], seq)
redis.call('HSET', p .. 'ho', seq, ARGV[5])
return redis.call('HGET', p .. 'h', seq) or false
"""
ADVANCE = """
redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HMGET', KEYS[1], 'now', 'offset')
"""
BUMP = """
local ns, seen = ARGV[1], ARGV[2] or ''
""" + _EPOCH + """
return {e, redis.call('INCR', ns .. ':epoch')}
"""
