"""web3.py through Tollgate with and without gzip: block 0x10 must equal the node's own answer.

Usage: web3_block.py TOLLGATE_URL NODE_URL. Prints "same with gzip" and "same without gzip".
"""
import sys

import requests
from web3.providers.rpc import HTTPProvider

tollgate, node = sys.argv[1], sys.argv[2]
# The provider's raw request: the fake chain's blocks carry more extraData than web3's
# formatters allow (which is the point: an answer big enough to compress).
def block(provider):
    return provider.make_request("eth_getBlockByNumber", ["0x10", False])["result"]


direct = block(HTTPProvider(node))

# requests sends Accept-Encoding: gzip, deflate by default and inflates what it gets.
via = block(HTTPProvider(tollgate))
assert via == direct, "gzip: %r != %r" % (via, direct)
probe = requests.post(tollgate, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x10", False]})
assert probe.headers.get("Content-Encoding") == "gzip", probe.headers
print("same with gzip")

session = requests.Session()
session.headers["Accept-Encoding"] = "identity"
plain = block(HTTPProvider(tollgate, session=session))
assert plain == direct, "identity: %r != %r" % (plain, direct)
probe = session.post(tollgate, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x10", False]})
assert "Content-Encoding" not in probe.headers, probe.headers
print("same without gzip")
