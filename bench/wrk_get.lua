-- wrk script: GET the paths listed one per line in FILE, thread t of T taking lines t, t+T, ...
-- in order and wrapping around (each thread its own slice, so the threads do not ask the same
-- questions in lockstep). Usage: wrk ... -s wrk_get.lua URL -- FILE T
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  paths = {}
  local n = 0
  for line in io.lines(file) do
    n = n + 1
    if (n - id) % nthreads == 0 then
      paths[#paths + 1] = line
    end
  end
  i = 0
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
