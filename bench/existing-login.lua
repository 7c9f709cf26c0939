-- kakao-existing: social login of Kakao users that already exist, cycling over users u1..u<N>.
-- wrk ... -s kakao-existing.lua URL -- N
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}

function init(args)
  local n = tonumber(args[1] or "1000")
  local headers = { ["Content-Type"] = "application/json" }
  for k = 1, n do
    reqs[k] = wrk.format("POST", "/accounts/rest-auth/kakao/", headers, '{"access_token":"u' .. k .. '"}')
  end
end

request = common.serve(reqs)

response = common.default_response
