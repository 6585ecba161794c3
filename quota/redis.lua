-- The Redis quota store's one script (quota/redis.go). ARGV[1] names the
-- operation: admit, settle, seed, peek, refund (split mode's undo of an
-- admission) or heartbeat. ARGV[2] is the time in µs since the epoch, or ""
-- for the Redis server's TIME. KEYS are, per subject, its hash and its
-- reservations zset (one hash tag: one Cluster slot).
--
-- The rules are quota/counters.go's and quota/memory.go's. Every number is
-- a Lua double; every value stays an integer below 2^53 (see counters.go),
-- sums that could pass it are taken in two steps, and divisions go through
-- math.fmod, which is exact.
--
-- Hash fields: rl/rt rpm bucket level (scaled units) and time (µs); tl/tt
-- the tpm bucket; bk budget period code, bp period start, bu/bt spent
-- micro-USD/tokens; ru/rk reserved micro-USD/tokens; rp slots in use;
-- "v:<id>" a reservation's "micros|tokens|slots". The zset holds the
-- reservation ids scored by expiry (µs); rx is the latest expiry a
-- reservation was given (the keys' expiry follows it).

local UNIT = 60000000
local MAXAMT = 2251799813685248
local IDLE = 120000000
local SLACK = 3600000000
local MAXPRUNE = 256
local DAY = 86400000000
local NSP = 6
local FIELDS = {'rl', 'rt', 'tl', 'tt', 'bk', 'bp', 'bu', 'bt', 'ru', 'rk', 'rp', 'rx'}
local MAXKEEP = 400 * DAY

-- fmt writes an integer into a string (tostring would write 1e+15).
-- redis.call's number arguments need no help: Redis writes an integral
-- double below 1e17 as an integer.
local function fmt(x)
  return string.format('%.0f', x)
end

-- num is v as an integer, or nil when it is not a finite number. Hash
-- fields are parsed once, in load: a number passes straight through
-- (tonumber of a string costs more than the rest of an admission).
local function num(v)
  if type(v) == 'number' then return v end
  local x = tonumber(v)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then
    return nil
  end
  return math.floor(x)
end

local function clamp(x, lo, hi)
  if x < lo then return lo end
  if x > hi then return hi end
  return x
end

local function amt(v)
  local x = num(v)
  if x == nil then return 0 end
  return clamp(x, 0, MAXAMT)
end

-- fdiv is floor(a/b) for b > 0.
local function fdiv(a, b)
  local r = math.fmod(a, b)
  local q = (a - r) / b
  if r < 0 then q = q - 1 end
  return q
end

-- cdiv2 is ceil((a+b)/l) for a, b >= 0 and l > 0, without forming a+b.
local function cdiv2(a, b, l)
  local ra, rb = math.fmod(a, l), math.fmod(b, l)
  local q = (a - ra) / l + (b - rb) / l
  local r = ra + rb
  if r > l then return q + 2 end
  if r > 0 then return q + 1 end
  return q
end

local function arg(i)
  local x = num(ARGV[i])
  if x == nil then
    error('quota: bad argument ' .. i)
  end
  return x
end

if redis.replicate_commands then
  redis.replicate_commands()
end

local op = ARGV[1]
local now = num(ARGV[2])
if ARGV[2] == '' or now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

if op == 'heartbeat' then
  local ttl = clamp(arg(4), 1000, 86400000000)
  local k = KEYS[1]
  redis.call('ZADD', k, now + ttl, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local ms = math.ceil(ttl / 1000)
  if redis.call('PTTL', k) < ms then
    redis.call('PEXPIRE', k, ms)
  end
  return redis.call('ZCARD', k)
end

-- Buckets ------------------------------------------------------------

-- step is clamp(l+x, -c, c) for l, x in [-c, c].
local function step(l, x, c)
  if x >= 0 then
    if l >= 0 and x >= c - l then return c end
    return l + x
  end
  if l <= 0 and x <= -c - l then return -c end
  return l + x
end

-- level is the bucket's level at now for limit lim.
local function level(lv, lt, lim)
  local c = lim * UNIT
  local l, t = num(lv), num(lt)
  if l == nil or t == nil then return c end
  l = clamp(l, -c, c)
  local e = now - t
  if e <= 0 then return l end
  if e >= 2 * UNIT then return c end
  local e1 = math.min(e, UNIT)
  l = step(l, e1 * lim, c)
  if e > e1 then
    l = step(l, (e - e1) * lim, c)
  end
  return l
end

-- wait is the µs until a bucket at level l (< cost) holds cost.
local function wait(cost, l, lim)
  if l >= 0 then return cdiv2(cost - l, 0, lim) end
  return cdiv2(cost, -l, lim)
end

local function reset(l, lim)
  local c = lim * UNIT
  if l >= 0 then return cdiv2(c - l, 0, lim) end
  return cdiv2(c, -l, lim)
end

-- add puts d (requests or tokens, may be negative) into the bucket.
local function add(lv, lt, lim, d)
  local c = lim * UNIT
  d = clamp(d, -2 * lim, 2 * lim)
  local d1 = clamp(d, -lim, lim)
  local l = step(level(lv, lt, lim), d1 * UNIT, c)
  return step(l, (d - d1) * UNIT, c)
end

-- Periods (UTC), as llm.PeriodBounds --------------------------------

local function civil(z)
  z = z + 719468
  local era = fdiv(z, 146097)
  local doe = z - era * 146097
  local yoe = fdiv(doe - fdiv(doe, 1460) + fdiv(doe, 36524) - fdiv(doe, 146096), 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + fdiv(yoe, 4) - fdiv(yoe, 100))
  local mp = fdiv(5 * doy + 2, 153)
  local d = doy - fdiv(153 * mp + 2, 5) + 1
  local m
  if mp < 10 then m = mp + 3 else m = mp - 9 end
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = fdiv(y, 400)
  local yoe = y - era * 400
  local mp
  if m > 2 then mp = m - 3 else mp = m + 9 end
  local doy = fdiv(153 * mp + 2, 5) + d - 1
  local doe = yoe * 365 + fdiv(yoe, 4) - fdiv(yoe, 100) + doy
  return era * 146097 + doe - 719468
end

-- period is the start and end (µs; end -1: never) of the period at now,
-- computed once per code and call.
local periods = {}
local function period0(code)
  if code == 4 then return 0, -1 end
  local dn = fdiv(now, DAY)
  if code == 1 then return dn * DAY, (dn + 1) * DAY end
  if code == 2 then
    local off = dn + 3 - fdiv(dn + 3, 7) * 7
    return (dn - off) * DAY, (dn - off + 7) * DAY
  end
  local y, m, d = civil(dn)
  if m == 12 then y, m = y + 1, 1 else m = m + 1 end
  return (dn - d + 1) * DAY, days(y, m, 1) * DAY
end

local function period(code)
  local p = periods[code]
  if not p then
    local s, e = period0(code)
    p = {s, e}
    periods[code] = p
  end
  return p[1], p[2]
end

-- Subjects ----------------------------------------------------------

local function params(base)
  return {rpm = arg(base), tpm = arg(base + 1), par = arg(base + 2),
          usd = arg(base + 3), tok = arg(base + 4), code = arg(base + 5)}
end

local function resv(s)
  if not s then return 0, 0, 0 end
  local u, t, p = string.match(s, '^(%d+)|(%d+)|(%d+)$')
  return amt(u), amt(t), amt(p)
end

-- load reads a subject's hash and releases its expired reservations
-- (writing the release when write is true).
local function load(hk, zk, write)
  local v = redis.call('HMGET', hk, unpack(FIELDS))
  -- o keeps the values as read, so that save writes only what changed.
  local o = {}
  local st = {hk = hk, zk = zk, o = o}
  for i, f in ipairs(FIELDS) do
    local x = v[i]
    if x then
      x = num(x) or x -- garbage stays a string: num gives nil for it
    end
    st[f], o[f] = x, x
  end
  -- A live reservation always holds something (a slot, micro-USD or
  -- tokens): with nothing held there is nothing to prune.
  if amt(st.rp) + amt(st.ru) + amt(st.rk) == 0 then
    return st
  end
  local ids = redis.call('ZRANGEBYSCORE', zk, '-inf', now, 'LIMIT', 0, MAXPRUNE)
  if #ids > 0 then
    local ru, rk, rp = amt(st.ru), amt(st.rk), amt(st.rp)
    local fs = {}
    for i, id in ipairs(ids) do
      fs[i] = 'v:' .. id
      local u, t, p = resv(redis.call('HGET', hk, fs[i]))
      ru, rk, rp = ru - u, rk - t, rp - p
    end
    st.ru, st.rk, st.rp = math.max(ru, 0), math.max(rk, 0), math.max(rp, 0)
    if write then
      redis.call('HDEL', hk, unpack(fs))
      redis.call('ZREM', zk, unpack(ids))
      redis.call('HSET', hk, 'ru', st.ru, 'rk', st.rk, 'rp', st.rp)
      o.ru, o.rk, o.rp = st.ru, st.rk, st.rp -- as stored now
    end
  end
  return st
end

-- present reports whether the budget counters exist for the current
-- period (or an older one, which rolls over); also the period bounds.
local function present(st, p)
  local s, e = period(p.code)
  local bp = num(st.bp)
  local ok = num(st.bk) == p.code and bp ~= nil and bp <= s and num(st.bu) ~= nil and num(st.bt) ~= nil
  return ok, s, e
end

local function rollover(st, s)
  if num(st.bp) < s then
    st.bp, st.bu, st.bt = s, 0, 0
  end
end

-- out appends a subject's state (counters.go's rawState).
local function out(r, st, p)
  local rr, rs, tr, ts = 0, 0, 0, 0
  if p.rpm > 0 then
    local l = level(st.rl, st.rt, p.rpm)
    rr, rs = fdiv(l, UNIT), reset(l, p.rpm)
  end
  if p.tpm > 0 then
    local l = level(st.tl, st.tt, p.tpm)
    tr, ts = fdiv(l, UNIT), reset(l, p.tpm)
  end
  local bu, bt, miss = 0, 0, 0
  if p.code > 0 then
    local ok, s = present(st, p)
    if not ok then
      miss = 1
    elseif num(st.bp) == s then
      bu, bt = amt(st.bu), amt(st.bt)
    end
  end
  local n = #r
  r[n + 1], r[n + 2], r[n + 3], r[n + 4] = rr, rs, tr, ts
  r[n + 5], r[n + 6], r[n + 7], r[n + 8], r[n + 9], r[n + 10] = amt(st.rp), bu, amt(st.ru), bt, amt(st.rk), miss
end

-- keep sets the expiry of a subject's keys: two minutes idle, longer
-- while a reservation lives or the budget's period runs; a lifetime
-- budget never expires.
local function keep(hk, zk, ms, persist, rx)
  if rx and rx > now then
    ms = clamp(math.max(ms, rx - now), 1, MAXKEEP)
    redis.call('PEXPIRE', zk, math.ceil(ms / 1000))
  end
  ms = clamp(ms, 1, MAXKEEP)
  if persist then
    redis.call('PERSIST', hk)
  else
    redis.call('PEXPIRE', hk, math.ceil(ms / 1000))
  end
end

-- save writes the changed fields of st and the keys' expiry.
local function save(st)
  local a = {}
  for _, f in ipairs(FIELDS) do
    local x = st[f]
    if type(x) == "number" and x ~= (st.o and st.o[f]) then
      a[#a + 1] = f
      a[#a + 1] = x
    end
  end
  if #a > 0 then
    redis.call('HSET', st.hk, unpack(a))
  end
  local rx = nil
  if amt(st.rp) + amt(st.ru) + amt(st.rk) > 0 then
    rx = num(st.rx)
  end
  keep(st.hk, st.zk, st.ms or IDLE, st.persist, rx)
end

-- hold notes how long st's keys must live for a subject with limits p.
local function hold(st, p)
  local ms = st.ms or IDLE
  if p.code == 4 then
    st.persist = true
  elseif p.code > 0 then
    local _, _, e = present(st, p)
    ms = math.max(ms, e - now + SLACK)
  end
  st.ms = ms
end

-- Operations ----------------------------------------------------------

if op == 'admit' then
  local id, ttl = ARGV[3], clamp(arg(4), 1, 86400000000)
  local c = {req = arg(5), tok = arg(6), cost = arg(7), par = arg(8)}
  local n = arg(9)
  local ps, sts, cache = {}, {}, {}
  for i = 1, n do
    ps[i] = params(10 + (i - 1) * NSP)
    local hk = KEYS[2 * i - 1]
    sts[i] = cache[hk] or load(hk, KEYS[2 * i], true)
    cache[hk] = sts[i]
  end
  local function reply(allowed, denied, lim, retry, need, took)
    local r = {allowed, denied, lim, retry, now, #need}
    for _, i in ipairs(need) do r[#r + 1] = i end
    for i = 1, n do
      out(r, sts[i], ps[i])
      local t = took and took[i] or {0, 0, 0, 0, 0, 0, 0}
      for k = 1, 7 do r[#r + 1] = t[k] end
    end
    return r
  end
  local function reread()
    local fresh = {}
    for i = 1, n do
      local hk = KEYS[2 * i - 1]
      sts[i] = fresh[hk] or load(hk, KEYS[2 * i], false)
      fresh[hk] = sts[i]
    end
  end

  local need = {}
  for i = 1, n do
    if ps[i].code > 0 and not present(sts[i], ps[i]) then
      need[#need + 1] = i - 1
    end
  end
  if #need > 0 then
    return reply(0, -1, 0, 0, need)
  end

  -- take tries c on one subject; it returns the refusing limit's code
  -- and the wait, or 0.
  local function take(st, p, tk)
    if p.rpm > 0 then
      if c.req > p.rpm then return 1, 0 end
      local l, cost = level(st.rl, st.rt, p.rpm), c.req * UNIT
      if l < cost then return 1, wait(cost, l, p.rpm) end
      if num(st.rl) == nil or num(st.rt) == nil then tk[6] = 1 end
      st.rl, st.rt, tk[1] = l - cost, now, c.req
    end
    if p.tpm > 0 then
      if c.tok > p.tpm then return 2, 0 end
      local l, cost = level(st.tl, st.tt, p.tpm), c.tok * UNIT
      if l < cost then return 2, wait(cost, l, p.tpm) end
      if num(st.tl) == nil or num(st.tt) == nil then tk[7] = 1 end
      st.tl, st.tt, tk[2] = l - cost, now, c.tok
    end
    if p.par > 0 and c.par == 1 then
      local rp = amt(st.rp)
      if rp >= p.par then return 3, 0 end
      st.rp, tk[3] = rp + 1, 1
    end
    if p.code > 0 then
      local _, s, e = present(st, p)
      rollover(st, s)
      local w = 0
      if e >= 0 then w = e - now end
      local bu, bt, ru, rk = amt(st.bu), amt(st.bt), amt(st.ru), amt(st.rk)
      if p.usd > 0 then
        if c.cost > p.usd then return 4, 0 end
        if bu + ru + c.cost > p.usd then return 4, w end
      end
      if p.tok > 0 then
        if c.tok > p.tok then return 5, 0 end
        if bt + rk + c.tok > p.tok then return 5, w end
      end
      st.ru, st.rk = math.min(ru + c.cost, MAXAMT), math.min(rk + c.tok, MAXAMT)
      tk[4], tk[5] = c.cost, c.tok
    end
    return 0, 0
  end

  local took = {}
  for i = 1, n do
    took[i] = {0, 0, 0, 0, 0, 0, 0}
    local code, w = take(sts[i], ps[i], took[i])
    if code ~= 0 then
      reread()
      return reply(0, i - 1, code, w, {})
    end
  end

  -- Commit: the counters, then one reservation per key.
  local pend, order = {}, {}
  for i = 1, n do
    local st, t = sts[i], took[i]
    hold(st, ps[i])
    if t[3] + t[4] + t[5] > 0 then
      local pr = pend[st.hk]
      if not pr then
        pr = {0, 0, 0}
        pend[st.hk] = pr
        order[#order + 1] = st
      end
      pr[1], pr[2], pr[3] = pr[1] + t[4], pr[2] + t[5], pr[3] + t[3]
    end
  end
  for _, st in ipairs(order) do
    local pr, f = pend[st.hk], 'v:' .. id
    local v = fmt(math.min(pr[1], MAXAMT)) .. '|' .. fmt(math.min(pr[2], MAXAMT)) .. '|' .. fmt(math.min(pr[3], MAXAMT))
    if redis.call('HSETNX', st.hk, f, v) == 0 then
      -- The id holds a reservation already: this one adds to it.
      local u, t, p = resv(redis.call('HGET', st.hk, f))
      redis.call('HSET', st.hk, f, fmt(math.min(u + pr[1], MAXAMT)) .. '|' .. fmt(math.min(t + pr[2], MAXAMT)) .. '|' .. fmt(math.min(p + pr[3], MAXAMT)))
    end
    redis.call('ZADD', st.zk, now + ttl, id)
    st.rx = clamp(math.max(num(st.rx) or 0, now + ttl), 0, now + 86400000000)
  end
  local saved = {}
  for i = 1, n do
    if not saved[sts[i].hk] then
      saved[sts[i].hk] = true
      save(sts[i])
    end
  end
  return reply(1, -1, 0, 0, {}, took)
end

if op == 'settle' then
  local id, rtok, atok, acost = ARGV[3], arg(4), arg(5), arg(6)
  local n = arg(7)
  local cache = {}
  for i = 1, n do
    local p = params(8 + (i - 1) * NSP)
    local hk = KEYS[2 * i - 1]
    local st = cache[hk] or load(hk, KEYS[2 * i], true)
    cache[hk] = st
    local f = 'v:' .. id
    local cur = false
    if amt(st.rp) + amt(st.ru) + amt(st.rk) > 0 then
      cur = redis.call('HGET', hk, f)
    end
    if cur then
      local u, t, pp = resv(cur)
      st.ru, st.rk, st.rp = math.max(amt(st.ru) - u, 0), math.max(amt(st.rk) - t, 0), math.max(amt(st.rp) - pp, 0)
      redis.call('HDEL', hk, f)
      redis.call('ZREM', KEYS[2 * i], id)
      st.dirty = true
    end
    if p.tpm > 0 and rtok ~= atok then
      st.tl, st.tt = add(st.tl, st.tt, p.tpm, rtok - atok), now
      st.dirty = true
    end
    if p.code > 0 then
      local ok, s = present(st, p)
      if ok then
        rollover(st, s)
        st.bu, st.bt = math.min(amt(st.bu) + acost, MAXAMT), math.min(amt(st.bt) + atok, MAXAMT)
        st.dirty = true
      end
    end
    hold(st, p)
  end
  for _, st in pairs(cache) do
    if st.dirty then save(st) end
  end
  return {now}
end

if op == 'seed' then
  local n, applied = arg(3), 0
  for i = 1, n do
    local b = 4 + (i - 1) * 4
    local code, start = arg(b), arg(b + 1)
    if code > 0 then
      local hk = KEYS[2 * i - 1]
      local p = {code = code}
      local st = load(hk, KEYS[2 * i], false)
      local ok, s = present(st, p)
      if not ok and s == start then
        redis.call('HSET', hk, 'bk', code, 'bp', s, 'bu', clamp(arg(b + 2), 0, MAXAMT), 'bt', clamp(arg(b + 3), 0, MAXAMT))
        st.bk, st.bp = code, s
        hold(st, p)
        keep(hk, KEYS[2 * i], st.ms, st.persist, num(st.rx))
        applied = applied + 1
      end
    end
  end
  return {now, applied}
end

if op == 'peek' then
  local n = arg(3)
  local r = {now}
  for i = 1, n do
    out(r, load(KEYS[2 * i - 1], KEYS[2 * i], false), params(4 + (i - 1) * NSP))
  end
  return r
end

if op == 'refund' then
  -- Undo exactly what one admission took from one subject: ARGV 3 id,
  -- 4 requests, 5 tokens (to the buckets), 6 slots, 7 micro-USD, 8
  -- tokens (reserved), 9 and 10 whether the admission created the rpm
  -- and tpm buckets, 11 n (1), 12.. the subject's limits. A bucket the
  -- admission created goes again when it is full once more (a missing
  -- bucket is full at any limit).
  local id, rq, tk, sl, u, t = ARGV[3], arg(4), arg(5), arg(6), arg(7), arg(8)
  local rnew, tnew = arg(9), arg(10)
  local p = params(12)
  local hk, zk = KEYS[1], KEYS[2]
  local st = load(hk, zk, true)
  local function undo(lf, tf, lim, d, new)
    if lim == 0 or (d == 0 and new == 0) then return end
    local l = add(st[lf], st[tf], lim, d)
    if new == 1 and l == lim * UNIT then
      st[lf], st[tf] = false, false
      redis.call('HDEL', hk, lf, tf)
    else
      st[lf], st[tf] = l, now
    end
  end
  undo('rl', 'rt', p.rpm, rq, rnew)
  undo('tl', 'tt', p.tpm, tk, tnew)
  local f = 'v:' .. id
  local cur = redis.call('HGET', hk, f)
  if cur then
    local cu, ct, cp = resv(cur)
    cu, ct, cp = math.max(cu - u, 0), math.max(ct - t, 0), math.max(cp - sl, 0)
    if cu + ct + cp == 0 then
      redis.call('HDEL', hk, f)
      redis.call('ZREM', zk, id)
    else
      redis.call('HSET', hk, f, fmt(cu) .. '|' .. fmt(ct) .. '|' .. fmt(cp))
    end
    st.ru, st.rk, st.rp = math.max(amt(st.ru) - u, 0), math.max(amt(st.rk) - t, 0), math.max(amt(st.rp) - sl, 0)
  end
  hold(st, p)
  save(st)
  local r = {now}
  out(r, st, p)
  return r
end

error('quota: unknown operation')
