-- verify: POST /rest-auth/token/verify/ {"token": <access>}, cycling over the warm users' access
-- tokens. wrk ... -s verify.lua URL -- ACCESSFILE
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs, i = {}, 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for k, token in ipairs(common.read_lines(args[1])) do
    reqs[k] = wrk.format("POST", "/rest-auth/token/verify/", headers, '{"token":"' .. token .. '"}')
  end
  i = (tid or 0) * 7919
end

function request()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end

response = common.default_response
