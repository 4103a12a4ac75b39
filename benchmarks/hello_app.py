"""The bare ASGI ceiling: one hello-world route on the same stack (FastAPI on uvicorn)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


async def hello(_request: Request) -> Response:
    return Response(b'{"hello":"world"}', media_type="application/json")


app.add_route("/hello", hello, methods=["GET"])
