"""bench/websocket's clients: N WebSocket connections through Tollgate, each subscribed to
newHeads and to the logs of one address, for DURATION seconds. Prints one JSON object: delivery
latency (node's send to client's receive, from the blocks' sentNanos stamp, CLOCK_MONOTONIC),
events received, and the gaps and duplicates in every client's block and log sequences.

usage: ws_clients.py URL CLIENTS DURATION ADDRESS
"""
import asyncio
import json
import sys
import time

import websockets


first = {}  # block number -> the earliest delivery to any client, in microseconds


async def client(url, address, stop_at, latencies, results, ready):
    try:
        async with websockets.connect(url, max_size=None, ping_interval=None, open_timeout=30) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": ["logs", {"address": address}]}))
            kinds, heads, logs = {}, [], []
            ready.append(1)
            while True:
                left = stop_at - time.monotonic()
                if left <= 0:
                    break
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout=left)
                except asyncio.TimeoutError:
                    break
                now = time.monotonic_ns()
                obj = json.loads(message)
                if "id" in obj:
                    kinds[obj.get("result")] = "newHeads" if obj["id"] == 1 else "logs"
                    continue
                params = obj["params"]
                result = params["result"]
                if kinds.get(params["subscription"]) == "newHeads":
                    heads.append(int(result["number"], 16))
                    if "sentNanos" in result:
                        micros = (now - int(result["sentNanos"])) / 1000
                        latencies.append(micros)
                        number = heads[-1]
                        first[number] = min(first.get(number, micros), micros)
                elif not result.get("removed", False):
                    logs.append(int(result["blockNumber"], 16))
            results.append((heads, logs))
    except Exception as error:  # a client that failed counts as failed, not as silent
        results.append(("error", repr(error)))


def holes(sequence):
    gaps = sum(max(0, b - a - 1) for a, b in zip(sequence, sequence[1:]))
    dups = sum(1 for a, b in zip(sequence, sequence[1:]) if b <= a)
    return gaps, dups


async def main(url, clients, duration, address):
    stop_at = time.monotonic() + duration
    latencies, results, ready = [], [], []
    tasks = []
    for _ in range(clients):
        tasks.append(asyncio.create_task(client(url, address, stop_at, latencies, results, ready)))
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    errors = [r[1] for r in results if r[0] == "error"]
    good = [r for r in results if r[0] != "error"]
    gaps = dups = log_gaps = log_dups = events = 0
    for heads, logs in good:
        g, d = holes(heads)
        gaps += g
        dups += d
        g, d = holes(logs)
        log_gaps += g
        log_dups += d
        events += len(heads) + len(logs)
    latencies.sort()
    earliest = sorted(first.values())

    def pct(p, values=latencies):
        return round(values[min(len(values) - 1, int(len(values) * p))], 1) if values else None

    print(json.dumps({
        "clients": len(good), "errors": len(errors), "first_error": errors[0] if errors else None, "events": events,
        "latency_us_p50": pct(0.5), "latency_us_p99": pct(0.99),
        "first_latency_us_p50": pct(0.5, earliest), "first_latency_us_p99": pct(0.99, earliest), "head_gaps": gaps, "head_duplicates": dups,
        "log_gaps": log_gaps, "log_duplicates": log_dups,
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
