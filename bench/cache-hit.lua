-- wrk script: the same cacheable call every time (served from Tollgate's response cache after the first).
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
wrk.headers["Content-Type"] = "application/json"
