-- wrk: GET one random customer by id (ids 1..N).
local n = tonumber(os.getenv("N"))
local auth = "Bearer " .. os.getenv("TOKEN")
local counter = 0

init = function(args)
  math.randomseed(tonumber(os.getenv("SEED") or "7") + counter)
  counter = counter + 1
end

request = function()
  return wrk.format("GET", "/api/v1/customers/" .. math.random(1, n), { ["Authorization"] = auth })
end
