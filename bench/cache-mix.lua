-- wrk script: a dApp-like method mix, each call drawn at random (seeded, so every target gets
-- the same sequence): 30% eth_call at latest, 15% eth_getBalance at latest, 15% eth_blockNumber,
-- 10% receipts, 10% blocks by number near the head, 10% eth_getLogs over a final range,
-- 10% other (eth_chainId, eth_gasPrice, net_version). Keys are drawn with a skew (a few
-- popular contracts and accounts, a long tail), as many tabs polling the same contracts do.
-- Each connection waits MIX_DELAY_MS (default 2) between calls: an offered load, not a flood,
-- so that the hit ratio does not grow with how fast the target answers.
math.randomseed(42)
local pause = tonumber(os.getenv("MIX_DELAY_MS") or "2")
function delay() return pause end
local head = 0x1234
local function hex(n) return string.format("0x%x", n) end
local function pick(n) return math.floor(n * math.random() ^ 3) + 1 end
local function address(n) return string.format("0x%040x", n) end
local calls = {
  {30, function() return "eth_call", string.format('[{"to":"%s","data":"0x70a08231%064x"},"latest"]', address(pick(200)), pick(500)) end},
  {15, function() return "eth_getBalance", string.format('["%s","latest"]', address(pick(20000))) end},
  {15, function() return "eth_blockNumber", "[]" end},
  {10, function() return "eth_getTransactionReceipt", string.format('["0x%064x"]', pick(50000)) end},
  {10, function() return "eth_getBlockByNumber", string.format('["%s",false]', hex(head - 80 + math.random(1, 100))) end},
  {10, function() return "eth_getLogs", string.format('[{"address":"%s","fromBlock":"0x100","toBlock":"%s"}]', address(pick(200)), hex(0x1000 + pick(500))) end},
  {4, function() return "eth_chainId", "[]" end},
  {4, function() return "eth_gasPrice", "[]" end},
  {2, function() return "net_version", "[]" end},
}
local total = 0
for _, c in ipairs(calls) do total = total + c[1] end
local id = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local r = math.random(1, total)
  for _, c in ipairs(calls) do
    r = r - c[1]
    if r <= 0 then
      local method, params = c[2]()
      id = id + 1
      return wrk.format(nil, nil, nil, string.format('{"jsonrpc":"2.0","id":%d,"method":"%s","params":%s}', id, method, params))
    end
  end
end
