-- wrk: tickets opened and moved, one new ticket to three status changes. Status changes
-- flip seeded open tickets 1..M between open and pending_customer; each thread keeps its
-- own share of the tickets (id mod threads) so its moves are legal ones.
local m = tonumber(os.getenv("M"))
local n = tonumber(os.getenv("N"))
local auth = "Bearer " .. os.getenv("TOKEN")
local threads = 0
local count = 0
local pending = {}
-- The warm-up only opens tickets, so the seeded ones are all open when the run starts.
local create_only = os.getenv("CREATE_ONLY") == "1"
index = 0
total = 1

setup = function(thread)
  thread:set("index", threads)
  threads = threads + 1
end

init = function(args)
  total = tonumber(os.getenv("THREADS"))
  math.randomseed(os.time() + index * 7919)
end

request = function()
  count = count + 1
  local headers = { ["Authorization"] = auth, ["Content-Type"] = "application/json" }
  if create_only or count % 4 == 0 then
    local body = '{"customer_id":' .. math.random(1, n) .. ',"subject":"Late parcel","category":"late_delivery","priority":"high"}'
    return wrk.format("POST", "/api/v1/tickets", headers, body)
  end
  local id = math.random(0, math.floor(m / total) - 1) * total + index + 1
  local to
  if pending[id] then
    to = "open"
    pending[id] = nil
  else
    to = "pending_customer"
    pending[id] = true
  end
  return wrk.format("PATCH", "/api/v1/tickets/" .. id, headers, '{"status":"' .. to .. '"}')
end
