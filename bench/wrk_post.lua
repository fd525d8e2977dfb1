-- wrk script: POST distinct bodies, one per line of BODIES (a file), to PATH with a bearer TOKEN.
-- Thread t of T sends lines t, t+T, t+2T, ... so no two requests carry the same body; when a
-- thread runs out it stops (wrk then reports fewer requests, never duplicates).
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  path, token, file, nthreads = args[1], args[2], args[3], tonumber(args[4])
  bodies = {}
  local n = 0
  for line in io.lines(file) do
    n = n + 1
    if (n - id) % nthreads == 0 then
      bodies[#bodies + 1] = line
    end
  end
  i = 0
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
end

function request()
  i = i + 1
  if i > #bodies then
    wrk.thread:stop()
    i = #bodies
  end
  return wrk.format("POST", path, headers, bodies[i])
end
