-- kakao-new: every request logs in a Kakao id never seen before (first login creates the user).
-- wrk ... -s kakao-new.lua URL -- BASE
-- id = BASE + tid * 2^40 + counter; bench/run picks BASE at random in [2^50, 2^52), so ids never
-- repeat across threads or (in practice) runs and stay exact in LuaJIT doubles (< 2^53).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local base, counter = 0, 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  base = tonumber(args[1]) + (tid or 0) * 2 ^ 40
end

function request()
  counter = counter + 1
  local body = string.format('{"access_token":"u%.0f"}', base + counter)
  return wrk.format("POST", "/accounts/rest-auth/kakao/", headers, body)
end

response = common.default_response
