-- mock-direct (baseline): GET /v2/user/me straight at the nginx mock Kakao, cycling over
-- "Bearer u1".."Bearer u<N>". A Kakao login costs authbridge two such calls, hence the /2 in targets.
-- wrk ... -s mock-direct.lua URL -- N
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}

function init(args)
  for k = 1, tonumber(args[1] or "1000") do
    reqs[k] = wrk.format("GET", "/v2/user/me", { ["Authorization"] = "Bearer u" .. k })
  end
end

request = common.serve(reqs)

response = common.default_response
