-- wrk script: wrk_post.lua's distinct bodies, sent at a fixed total RATE (requests/s, the fifth
-- argument) instead of as fast as the server answers. Each thread hands out send times
-- RATE/threads apart; a connection that has its answer claims the next free time and waits for it
-- (wrk's delay(), whole milliseconds). While idle connections remain, every request leaves on
-- schedule, whatever the latency of the others: the load does not ease off when the server
-- slows. When none is idle the achieved rate falls below RATE, which wrk's Requests/sec shows.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "wrk_post.lua")

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } ledger_timespec;
  int clock_gettime(int clk, ledger_timespec *tp);
]]
local ts = ffi.new("ledger_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local post_init = init
function init(args)
  post_init(args)
  interval = 1000 * tonumber(args[4]) / tonumber(args[5]) -- ms between this thread's sends
  last = nil
end

function delay()
  local t = now_ms()
  last = (last or t) + interval -- behind schedule (every connection busy): catch up at once
  return math.max(0, math.floor(last - t))
end
