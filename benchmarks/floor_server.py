"""The serving floor: a raw ASGI app (no framework, no model) that reads the request body and
answers a fixed JSON, on uvicorn run as `modelops serve` runs it (one process, the same
`uvicorn.run` arguments). What a server cannot go below on this machine's uvicorn."""

from __future__ import annotations

import sys

import uvicorn

BODY = b'{"version":"v0.0.1","predictions":["benign"],"probabilities":[{"benign":1.0}]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # read the whole body, as a server that used it would
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    # log_level="info", as serving.serve passes: the access log line is part of both
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
