-- wrk script: POST one JSON-RPC call per request (path set on the command line).
wrk.method = "POST"
-- METHOD=... names another method (the fast node answers any single call the same way).
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"' .. (os.getenv("METHOD") or "eth_blockNumber") .. '","params":[]}'
wrk.headers["Content-Type"] = "application/json"
