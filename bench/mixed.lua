-- wrk: mixed reads and writes. Four in five requests read one random customer; one in
-- five records an interaction for one, with its own Idempotency-Key (as a client that
-- retries would send).
local n = tonumber(os.getenv("N"))
local auth = "Bearer " .. os.getenv("TOKEN")
local threads = 0
local sent = 0

-- Each thread's number, set as a global of its own state, so its keys are its own.
setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

init = function(args)
  math.randomseed(tonumber(os.getenv("SEED") or "7") + thread_id)
  -- A run of its own: keys never repeat those of an earlier run on the same database.
  run = os.getenv("RUN") or tostring(os.time())
end

request = function()
  sent = sent + 1
  local id = math.random(1, n)
  if sent % 5 == 0 then
    local body = '{"customer_id":' .. id .. ',"channel":"phone","direction":"inbound","subject":"Asked about an order","body":""}'
    return wrk.format("POST", "/api/v1/interactions", {
      ["Authorization"] = auth,
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = "mixed-" .. run .. "-" .. thread_id .. "-" .. sent,
    }, body)
  end
  return wrk.format("GET", "/api/v1/customers/" .. id, { ["Authorization"] = auth })
end
