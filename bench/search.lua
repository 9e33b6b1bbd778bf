-- wrk: customer searches as a front desk types them — an exact email, an external id,
-- a partial Chinese name and a Latin name prefix — in rotation, 20 results a page.
local n = tonumber(os.getenv("N"))
local seed = os.getenv("LOAD_SEED") or "42"
local auth = "Bearer " .. os.getenv("TOKEN")
local cjk = { "小明", "王小明", "志强", "陈静", "嘉欣", "李娜", "张伟", "子轩", "刘洋", "黄秀英" }
local latin = { "joh smi", "mary", "emma lee", "olive", "rob tay", "karen w", "dav", "sarah mar", "thomas j", "linda" }
local i = 0

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

init = function(args)
  math.randomseed(tonumber(os.getenv("SEED") or "7"))
end

request = function()
  i = i + 1
  local q
  local kind = i % 4
  if kind == 0 then
    q = "customer" .. math.random(0, n - 1) .. ".s" .. seed .. "@example.com"
  elseif kind == 1 then
    q = string.format("S%s-%08d", seed, math.random(0, n - 1))
  elseif kind == 2 then
    q = cjk[math.random(1, #cjk)]
  else
    q = latin[math.random(1, #latin)]
  end
  return wrk.format("GET", "/api/v1/customers?limit=20&q=" .. urlencode(q), { ["Authorization"] = auth })
end
