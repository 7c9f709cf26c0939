-- mock-direct (baseline): GET /v2/user/me straight at the nginx mock Kakao, cycling over
-- "Bearer u1".."Bearer u<N>". A Kakao login costs authbridge two such calls, hence the /2 in targets.
-- wrk ... -s mock-direct.lua URL -- N
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs, i = {}, 0

function init(args)
  for k = 1, tonumber(args[1] or "1000") do
    reqs[k] = wrk.format("GET", "/v2/user/me", { ["Authorization"] = "Bearer u" .. k })
  end
  i = (tid or 0) * 7919
end

function request()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end

response = common.default_response
