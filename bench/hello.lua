-- hello (baseline): GET / on bench/hello, a bare poem server: the ceiling for any poem handler here.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

response = common.default_response
