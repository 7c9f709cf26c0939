-- apple-idtoken: Sign in with Apple of users that already exist, with an id_token alone (+ its raw
-- nonce), cycling over the lines "<id_token> <nonce>" that bench/providers.py apple-tokens wrote.
-- wrk ... -s apple-idtoken.lua URL -- TOKENFILE
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for k, line in ipairs(common.read_lines(args[1])) do
    local token, nonce = line:match("^(%S+)%s+(%S+)$")
    reqs[k] = wrk.format("POST", "/accounts/rest-auth/apple/", headers,
      '{"id_token":"' .. token .. '","nonce":"' .. nonce .. '"}')
  end
end

request = common.serve(reqs)

response = common.default_response
