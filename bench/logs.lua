-- wrk script for bench/compression: one eth_getLogs call per request.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1220000","toBlock":"0x1220100"}]}'
wrk.headers["Content-Type"] = "application/json"
