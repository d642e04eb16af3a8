"""web3.py's own WebSocket provider subscribed to newHeads through Tollgate.

Usage: web3_newheads.py WS_URL COUNT. Prints "ready" once subscribed, then, after COUNT heads,
one JSON line: [[number, hash], ...] in the order they arrived. The Swift test that runs it
kills and stalls nodes meanwhile and checks the sequence.
"""
import asyncio
import json
import sys

from web3 import AsyncWeb3, WebSocketProvider


async def main(url: str, count: int) -> None:
    async with AsyncWeb3(WebSocketProvider(url)) as w3:
        await w3.eth.subscribe("newHeads")
        print("ready", flush=True)
        heads = []
        async for message in w3.socket.process_subscriptions():
            result = message["result"]
            block_hash = result["hash"]
            heads.append([int(result["number"]), block_hash.to_0x_hex() if hasattr(block_hash, "to_0x_hex") else str(block_hash)])
            if len(heads) >= count:
                break
        print(json.dumps(heads), flush=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], int(sys.argv[2])), timeout=60))
