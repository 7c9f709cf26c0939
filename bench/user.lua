-- user: GET /rest-auth/user/ with "Authorization: Bearer <access>", cycling over the warm users'
-- access tokens. wrk ... -s user.lua URL -- ACCESSFILE
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}

function init(args)
  for k, token in ipairs(common.read_lines(args[1])) do
    reqs[k] = wrk.format("GET", "/rest-auth/user/", { ["Authorization"] = "Bearer " .. token })
  end
end

request = common.serve(reqs)

response = common.default_response
