/**
 * The Lua side of the shared buckets. Every script works on one provider's
 * two keys, which share a hash tag (`{<prefix>:rl:<provider>}`), so a bucket
 * lives in one Redis Cluster slot:
 *
 * - `…:b`, a hash: `avail` (tokens; negative = reserved ahead), `ts` (ms of
 *   the last refill, Redis `TIME` with µs), `issued` (tokens ever reserved:
 *   the ticket counter), `base` (tokens/s), `burst`, `scale` (the scale set
 *   with `setBudgetScale`), `cscale` (the smallest scale a coordinator asks
 *   for), `level` (the pressure set with `setGlobalPressure`), `clevel` (the
 *   worst coordinator level), `epoch` (bumped by every change of rate or
 *   frontier) and `gen` (set when the bucket is created, so a client notices
 *   a bucket that was lost and created again);
 * - `…:c`, a hash: coordinator id → `level|scale`.
 *
 * The frontier `F = issued + avail` is the ticket that is due now; a waiter
 * holding ticket `T` is due `(T − F) / rate` ms later. Numbers are written
 * with `%.17g` (Lua's default `%.14g` loses sub-ms precision at epoch-ms
 * magnitudes).
 *
 * @internal
 */
import * as Redis from "effect/persistence/Redis"

// KEYS[1] bucket hash, KEYS[2] coordinator hash
// ARGV[1] base rate (tokens/s) and ARGV[2] burst used when the bucket does not exist,
// ARGV[3] key TTL (ms), ARGV[4] control channel, ARGV[5] provider, ARGV[6] operation, ARGV[7..] its arguments
const prelude = `
local function fmt(x) return string.format('%.17g', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local h = redis.call('HMGET', KEYS[1], 'avail', 'ts', 'issued', 'base', 'burst', 'scale', 'cscale', 'epoch', 'gen', 'level',
  'clevel', 'scale_at', 'level_at', 'holes', 'hold')
local created = h[4] == false
local base = tonumber(h[4] or ARGV[1])
local burst = tonumber(h[5] or ARGV[2])
local avail = tonumber(h[1] or burst)
local ts = tonumber(h[2] or now)
local issued = tonumber(h[3] or 0)
local scale = tonumber(h[6] or 1)
local cscale = tonumber(h[7] or 1)
local epoch = tonumber(h[8] or 0)
local gen = h[9] or (t[1] .. '.' .. t[2])
local level = h[10] or 'ok'
local clevel = h[11] or 'ok'
-- when the scale and the pressure were last set (Redis ms): after a bucket is lost, each process
-- sets again what it had set, and the newest setting wins whatever order they arrive in
local scaleAt = tonumber(h[12] or 0)
local levelAt = tonumber(h[13] or 0)
-- tickets given back ahead of the frontier, {start, size} by start: the frontier skips them when it
-- gets there, so every waiter behind moves up and none ahead does
local holes = {}
for a, b in string.gmatch(h[14] or '', '([^:,]+):([^,]+)') do holes[#holes + 1] = { tonumber(a), tonumber(b) } end
-- the refill until this time (ms) is withheld for leases being handed out
local hold = tonumber(h[15] or 0)
local ttl = tonumber(ARGV[3])
-- an operation's time: now, or the time of the original setting being restored
local function stamp(arg) if arg == nil or arg == '' then return now end return tonumber(arg) end
local function rate() return base * math.min(scale, cscale) / 1000 end
local function settle()
  if now > ts then
    local r = rate()
    if r > 0 then avail = math.min(burst, avail + (now - ts) * r) end
    ts = now
  end
  -- a real pause: nothing is granted, not even an idle burst
  if rate() == 0 and avail > 0 then avail = 0 end
  while #holes > 0 and holes[1][1] <= issued + avail + 1e-9 do
    avail = math.min(burst, avail + holes[1][2])
    table.remove(holes, 1)
  end
end
local function holesText()
  local parts = {}
  for i = 1, #holes do parts[i] = fmt(holes[i][1]) .. ':' .. fmt(holes[i][2]) end
  return table.concat(parts, ',')
end
local function save()
  redis.call('HSET', KEYS[1], 'avail', fmt(avail), 'ts', fmt(ts), 'issued', fmt(issued), 'base', fmt(base),
    'burst', fmt(burst), 'scale', fmt(scale), 'cscale', fmt(cscale), 'epoch', epoch, 'gen', gen, 'level', level,
    'clevel', clevel, 'scale_at', fmt(scaleAt), 'level_at', fmt(levelAt), 'holes', holesText(),
    'hold', fmt(hold))
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local function frontier() return issued + avail end
-- a change every process must re-time its waiters for
local function changed()
  epoch = epoch + 1
  save()
  redis.call('PUBLISH', ARGV[4],
    gen .. '|' .. fmt(frontier()) .. '|' .. fmt(rate()) .. '|' .. epoch .. '|' .. holesText() .. '|' .. ARGV[5])
end
local ranks = { ok = 0, soft = 1, hard = 2 }
local function worse(a, b) if ranks[a] >= ranks[b] then return a end return b end
local function coordinators()
  cscale = 1
  clevel = 'ok'
  local all = redis.call('HVALS', KEYS[2])
  for i = 1, #all do
    local a = string.find(all[i], '|', 1, true)
    local b = string.find(all[i], '|', a + 1, true)
    clevel = worse(clevel, string.sub(all[i], 1, a - 1))
    cscale = math.min(cscale, tonumber(string.sub(all[i], a + 1, b - 1)))
  end
end
-- whether a coordinator's entry is newer than at
local function newer(coordinator, at)
  local entry = redis.call('HGET', KEYS[2], coordinator)
  if not entry then return false end
  local a = string.find(entry, '|', 1, true)
  local b = string.find(entry, '|', a + 1, true)
  return tonumber(string.sub(entry, b + 1)) > at
end
-- a bucket Redis lost and a call other than a registration creates again starts empty and refills
-- only after a grace of 2 s: time for every process to set again what it had set (a pause, a level)
if created and ARGV[6] ~= 'configure' then
  -- as 2 s of debt, so the frontier stays a straight line every process can time its waiters by
  avail = -rate() * 2000
end
settle()
-- a bucket created anew (first use, or Redis lost it): every process hears of it, and sets again
-- what it had set; levels that survived in their own key count at once
if created then
  coordinators()
  changed()
end
`

/** What every script answers: the timeline and the shared state after the call. @internal */
export type Reply = [
  granted: 0 | 1,
  frontier: string,
  rate: string,
  issuedBefore: string,
  epoch: number,
  gen: string,
  base: string,
  burst: string,
  scale: string,
  level: string,
  created: 0 | 1,
  /** Tokens leased after the reservation (`acquire` with a lease asked for), from ticket `issuedBefore + cost`. */
  leased: number,
  /**
   * When the setting this call made counts from (Redis ms), for `scale`,
   * `pressure`, `level`, `forget`; for a `configure` that changed another
   * process's configuration, what it was: `burst|base`.
   */
  stamped: string,
  /** Tickets given back ahead of the frontier: `start:size,…`, by start. */
  holes: string
]

const reply = `
return { granted, fmt(f), fmt(rate()), fmt(issuedBefore), epoch, gen, fmt(base), fmt(burst), fmt(math.min(scale, cscale)),
  worse(level, clevel), created and 1 or 0, leased, type(stamped) == 'string' and stamped or fmt(stamped), holesText() }
`

/**
 * Reserves `cost` tokens (mode `reserve`: always, possibly ahead of time;
 * the answer says from which ticket) or takes them only if they are there
 * now (mode `try`); then, if `lease` > 0, leases up to that many tokens due
 * now, at most a quarter of those left (the answer's `leased`). `frontier`
 * is the frontier before the call.
 *
 * @internal
 */
export const acquire = Redis.script(
  (keys: readonly [string, string], head: Head, cost: number, mode: "reserve" | "try", lease: number) => [
    ...keys,
    ...headArgs(head),
    "acquire",
    cost,
    mode,
    lease
  ],
  {
    numberOfKeys: 2,
    lua: prelude + `
local cost = tonumber(ARGV[7])
local f = frontier()
local issuedBefore = issued
local granted = 0
local leased = 0
local stamped = 0
if ARGV[8] == 'reserve' or (rate() > 0 and avail + 1e-9 >= cost) then
  avail = avail - cost
  issued = issued + cost
  granted = 1
  -- and tokens due now for this process to hand out without a round trip: only
  -- from plenty (at most a quarter of what is left, and the bucket stays at
  -- least half full), never from reservations, and only where a round trip per
  -- grant would be slow (a bucket refilling at least 500 tokens/s)
  local want = tonumber(ARGV[9])
  local life = 10
  -- leases of every process are handed out within 10 ms of being taken: the refill until the last
  -- one runs out is withheld (once, however many overlap), so grants stay within burst + rate over
  -- every interval, exactly as without leases
  local withheld = rate() * (now + life - math.max(now, hold))
  if want > 0 and rate() * 2 >= 1 then
    leased = math.min(want, math.floor(avail / 4), math.floor(avail - burst / 2 - withheld))
    if leased >= 1 then
      avail = avail - leased - withheld
      hold = now + life
      issued = issued + leased
    else
      leased = 0
    end
  end
end
save()
` + reply
  }
).withReturnType<Reply>()

/** The operations that change a bucket's rate or frontier, and `state`, which only reads it. @internal */
export type Control =
  | readonly ["state"]
  | readonly ["configure", base: number, burst: number]
  | readonly ["scale", scale: number, at: string]
  | readonly ["pressure", level: string, at: string]
  | readonly ["level", coordinator: string, level: string, scale: number, at: string]
  | readonly ["forget", coordinator: string, at: string]
  | readonly ["release", ticketEnd: number, cost: number, gen: string]

/**
 * Changes the bucket (or only reads it, `state`) and, on a change,
 * publishes `gen|frontier|rate|epoch|holes|provider` on the control channel. A
 * setting (`scale`, `pressure`, `level`, `forget`) carries the time it was
 * made (`""` = now): an older one than the bucket holds is ignored, so
 * processes setting again what they had set, after Redis lost the bucket,
 * converge on the newest.
 *
 * @internal
 */
export const control = Redis.script(
  (keys: readonly [string, string], head: Head, ...op: Control) => [...keys, ...headArgs(head), ...op],
  {
    numberOfKeys: 2,
    lua: prelude + `
local op = ARGV[6]
local granted = 0
local leased = 0
local stamped = 0
if op == 'configure' then
  local b, r = tonumber(ARGV[8]), tonumber(ARGV[7])
  if created or b ~= burst or r ~= base then
    granted = created and 0 or 1
    stamped = fmt(burst) .. '|' .. fmt(base)
    base = r
    if b ~= burst then avail = math.min(avail, b) end
    burst = b
    changed()
  else
    save()
  end
elseif op == 'scale' then
  local at = stamp(ARGV[8])
  if at >= scaleAt then
    scale = tonumber(ARGV[7])
    scaleAt = at
    changed()
  else
    save()
  end
  stamped = at
elseif op == 'pressure' then
  local at = stamp(ARGV[8])
  if at >= levelAt then
    level = ARGV[7]
    levelAt = at
  end
  save()
  stamped = at
elseif op == 'level' then
  local at = stamp(ARGV[10])
  local scaleOf = tonumber(ARGV[9])
  if ranks[ARGV[8]] == nil or scaleOf == nil or scaleOf ~= scaleOf or scaleOf < 0 or scaleOf > 1 then
    -- not a level: never written (it would break the worst-of for everyone)
    save()
  elseif not newer(ARGV[7], at) then
    redis.call('HSET', KEYS[2], ARGV[7], ARGV[8] .. '|' .. ARGV[9] .. '|' .. fmt(at))
    coordinators()
    changed()
  else
    save()
  end
  stamped = at
elseif op == 'forget' then
  local at = stamp(ARGV[8])
  if not newer(ARGV[7], at) then granted = redis.call('HDEL', KEYS[2], ARGV[7]) end
  coordinators()
  changed()
  stamped = at
elseif op == 'release' then
  -- tokens of an interrupted waiter, tickets (finish - cost, finish]; a bucket created since knows nothing of them
  if ARGV[9] == gen then
    local finish, cost = tonumber(ARGV[7]), tonumber(ARGV[8])
    local start = finish - cost
    local f = frontier()
    if math.abs(finish - issued) < 1e-6 then
      -- the last reservation: undone exactly, and the holes it leaves at the end with it
      issued = issued - cost
      avail = math.min(burst, avail + cost)
      while #holes > 0 and math.abs(holes[#holes][1] + holes[#holes][2] - issued) < 1e-6 do
        issued = issued - holes[#holes][2]
        avail = math.min(burst, avail + holes[#holes][2])
        table.remove(holes)
      end
    elseif finish <= f + 1e-9 then
      -- already due: the tokens go back into the bucket
      avail = math.min(burst, avail + cost)
    else
      -- ahead of the frontier (a part already due is not given back): a hole for the frontier to skip
      local from = math.max(start, f)
      local at = #holes + 1
      for i = 1, #holes do if holes[i][1] > from then at = i break end end
      table.insert(holes, at, { from, finish - from })
      -- few holes: beyond 64 the furthest are dropped (their tokens are not given back)
      while #holes > 64 do table.remove(holes) end
    end
    settle()
    changed()
  end
else
  -- state: also keeps the keys alive, and recreates a bucket Redis lost from the caller's configuration
  save()
end
local f = frontier()
local issuedBefore = issued
` + reply
  }
).withReturnType<Reply>()

/** What every call tells the script besides its operation. @internal */
export interface Head {
  readonly base: number
  readonly burst: number
  readonly ttlMs: number
  readonly channel: string
  readonly provider: string
}

const headArgs = (head: Head) => [head.base, head.burst, head.ttlMs, head.channel, head.provider]
