-- kakao-new-common: as kakao-new (a Kakao id never seen before each time), but the mock gives every
-- new user one of 20 nicknames ("u<id>n<k>" -> "홍길동 <k>"), so usernames need suffixes.
-- wrk ... -s kakao-new-common.lua URL -- BASE
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local base, counter = 0, 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  base = tonumber(args[1]) + (tid or 0) * 2 ^ 40
end

function request()
  counter = counter + 1
  local body = string.format('{"access_token":"u%.0fn%d"}', base + counter, counter % 20)
  return wrk.format("POST", "/accounts/rest-auth/kakao/", headers, body)
end

response = common.default_response
