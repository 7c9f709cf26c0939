-- verify: POST /rest-auth/token/verify/ {"token": <access>}, cycling over the warm users' access
-- tokens. wrk ... -s verify.lua URL -- ACCESSFILE
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for k, token in ipairs(common.read_lines(args[1])) do
    reqs[k] = wrk.format("POST", "/rest-auth/token/verify/", headers, '{"token":"' .. token .. '"}')
  end
end

request = common.serve(reqs)

response = common.default_response
