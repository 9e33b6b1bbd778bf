-- wrk: the web application's main pages as 16 signed-in staff use them. Each connection
-- sends one of the 16 session cookies in $COOKIES (space-separated); PAGE chooses the page:
-- dashboard, list, search (partial Chinese and Latin names, pinyin initials) or customer
-- (the 360° page of a random customer).
local n = tonumber(os.getenv("N"))
local page = os.getenv("PAGE")
local cookies = {}
for c in string.gmatch(os.getenv("COOKIES"), "%S+") do cookies[#cookies + 1] = c end
local queries = { "%E5%B0%8F%E6%98%8E", "%E5%BF%97%E5%BC%BA", "zw", "liuyang", "mary", "joh%20smi", "%E9%99%88%E9%9D%99", "olive" }
local i = 0

init = function(args)
  math.randomseed(tonumber(os.getenv("SEED") or "7"))
end

request = function()
  i = i + 1
  local path
  if page == "dashboard" then
    path = "/"
  elseif page == "list" then
    path = "/customers"
  elseif page == "search" then
    path = "/customers?q=" .. queries[(i % #queries) + 1]
  else
    path = "/customers/" .. math.random(1, n)
  end
  local headers = { ["Cookie"] = "tenure_session=" .. cookies[(i % #cookies) + 1], ["Accept-Encoding"] = "gzip" }
  return wrk.format("GET", path, headers)
end
