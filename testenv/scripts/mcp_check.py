"""The official MCP Python SDK (PyPI `mcp`), unmodified, against the client proxy's MCP endpoint
(streamable HTTP, `POST /mcp`, the proxy's key as a bearer token): lists the tools and calls them.

Usage: mcp_check.py MCP_URL KEY   (prints one JSON object)
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def parsed(result):
    text = result.content[0].text if result.content else ""
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    return {"error": bool(result.is_error), "body": body}


async def main(url, key):
    out = {}
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120.0)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        out["quote"] = parsed(await client.call_tool("quote", {}))
        out["spend_before"] = parsed(await client.call_tool("spend", {}))
        out["embed"] = parsed(await client.call_tool("embed", {"input": "hello from an MCP host"}))
        out["chat"] = parsed(
            await client.call_tool("chat", {"prompt": "What is the capital of France?", "max_tokens": 8})
        )
        out["spend_after"] = parsed(await client.call_tool("spend", {}))
        out["no_input"] = parsed(await client.call_tool("chat", {}))
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
