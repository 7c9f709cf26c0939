-- Shared by every scenario script: per-thread status counts, and one JSON line from done().
-- A scenario script does `local common = dofile(<this file>)` and then defines request()/response()
-- through common.track(). Lua here is wrk's LuaJIT: numbers are doubles, exact below 2^53.
local M = {}

local threads = {}
local next_id = 0

-- Runs in the main state once per thread, before init().
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Per-thread state (each thread has its own Lua state): status counts.
non2xx = 0
statuses = {}

function M.count(status)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

-- Reads a file of one token per line into a list.
function M.read_lines(path)
  local out = {}
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if line ~= "" then table.insert(out, line) end
  end
  f:close()
  return out
end

function M.escape(s)
  return (s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end))
end

-- Runs in the main state after the run: one machine-readable line for bench/run.
function done(summary, latency, requests)
  local bad, seen = 0, {}
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    local s = t:get("status_list") or ""
    for code, n in s:gmatch("(%d+)=(%d+)") do
      seen[code] = (seen[code] or 0) + tonumber(n)
    end
  end
  local parts = {}
  for code, n in pairs(seen) do table.insert(parts, string.format('"%s":%d', code, n)) end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,'
      .. '"max_ms":%.3f,"non2xx":%d,"statuses":{%s},"socket_errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d}}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, bad, table.concat(parts, ","), e.connect, e.read, e.write, e.timeout))
end

-- Flattens this thread's status table into a string that thread:get() can carry to done().
function M.publish()
  local parts = {}
  for code, n in pairs(statuses) do table.insert(parts, code .. "=" .. n) end
  status_list = table.concat(parts, ",")
end

-- request() for a scenario of prepared requests (filled by init()): each in turn, every thread
-- from its own offset, so that threads start at different users.
function M.serve(reqs)
  local i
  return function()
    i = (i or (tid or 0) * 7919) + 1
    return reqs[(i % #reqs) + 1]
  end
end

-- Default response(): count and publish cheaply (publish only when something went wrong).
function M.default_response(status, headers, body)
  if status < 200 or status > 299 then
    M.count(status)
    M.publish()
  end
end

return M
