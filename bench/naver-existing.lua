-- naver-existing: Naver login (access token) of users that already exist, cycling over nv1..nv<N>;
-- the mock answers /v1/nid/me with id "<k>" for "nv<k>". wrk ... -s naver-existing.lua URL -- N
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs, i = {}, 0

function init(args)
  local n = tonumber(args[1] or "1000")
  local headers = { ["Content-Type"] = "application/json" }
  for k = 1, n do
    reqs[k] = wrk.format("POST", "/accounts/rest-auth/naver/", headers, '{"access_token":"nv' .. k .. '"}')
  end
  i = (tid or 0) * 7919 -- threads start at different users
end

function request()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end

response = common.default_response
