-- wrk: loyalty points, earn and redeem mixed (two earns of 10 to one redemption of 15), on
-- a random member of 1..N, each request with its own Idempotency-Key.
local n = tonumber(os.getenv("N"))
local auth = "Bearer " .. os.getenv("TOKEN")
local threads = 0
local count = 0
prefix = "w0-"

setup = function(thread)
  threads = threads + 1
  thread:set("prefix", "w" .. threads .. "-" .. os.time() .. "-")
end

init = function(args)
  math.randomseed(os.time() + #prefix * 7919)
end

request = function()
  count = count + 1
  local customer = math.random(1, n)
  local path, points
  if count % 3 == 0 then
    path, points = "/api/v1/loyalty/redeem", 15
  else
    path, points = "/api/v1/loyalty/earn", 10
  end
  local body = '{"customer_id":' .. customer .. ',"points":' .. points .. ',"reason":"bench"}'
  return wrk.format("POST", path, {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. count,
  }, body)
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
