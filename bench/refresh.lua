-- refresh: POST /rest-auth/token/refresh/ with rotation on. Every request spends a refresh token
-- that was never used before: first from this thread's slice of the pre-minted pool, then the
-- rotated tokens that responses hand back (as a real client would keep them).
-- wrk ... -s refresh.lua URL -- POOLFILE OFFSET COUNT NTHREADS
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local queue, head, tail, last = {}, 1, 0, "none"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  local pool = common.read_lines(args[1])
  local offset, count, nthreads = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  assert(offset + count <= #pool, "refresh pool too small")
  for k = offset + 1, offset + count do
    if k % nthreads == (tid or 0) then
      tail = tail + 1
      queue[tail] = pool[k]
    end
  end
end

function request()
  if head <= tail then
    last = queue[head]
    queue[head] = nil
    head = head + 1
  end -- else: pool ran dry (only after failures); reusing `last` will fail and be counted
  return wrk.format("POST", "/rest-auth/token/refresh/", headers, '{"refresh":"' .. last .. '"}')
end

function response(status, hdrs, body)
  if status == 200 then
    local token = body:match('"refresh"%s*:%s*"([^"]+)"')
    if token then
      tail = tail + 1
      queue[tail] = token
      return
    end
    status = 599 -- 200 without a refresh token: count it as a failure
  end
  common.count(status)
  common.publish()
end
