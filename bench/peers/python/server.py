"""The Python peer for agui-server's benchmark (bench/README.md).

The official AG-UI server-starter pattern (ag-ui-protocol/ag-ui,
integrations/server-starter/python): a FastAPI route taking ``RunAgentInput``, an
``EventEncoder(accept=...)``, an async generator behind ``StreamingResponse``; run by uvicorn,
either as the starter ships it (h11 + asyncio) or tuned (uvloop + httptools). RS256 bearer tokens
are checked by a FastAPI dependency with PyJWT against the benchmark's JWKS file
(shared/reference/perf-peers.md section 1).

The reply is scripted exactly like agui-server's ``/stream <n> [size] [delay_ms]``: RUN_STARTED,
TEXT_MESSAGE_START, n x TEXT_MESSAGE_CONTENT (delta i = ``size`` bytes of 'a' + i % 26, a pause of
delay_ms before each), TEXT_MESSAGE_END, RUN_FINISHED.

Environment: JWKS_FILE, ISSUER, AUDIENCE.
"""

import asyncio
import json
import os
import uuid

import jwt
from ag_ui.core import (
    EventType,
    RunAgentInput,
    RunFinishedEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)
from ag_ui.encoder import EventEncoder
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse

try:  # ag-ui-protocol 1.0 exports the version RUN_STARTED carries.
    from ag_ui.core import PROTOCOL_VERSION
except ImportError:  # pragma: no cover - older layouts
    PROTOCOL_VERSION = "1.0"

ISSUER = os.environ["ISSUER"]
AUDIENCE = os.environ["AUDIENCE"]
with open(os.environ["JWKS_FILE"], encoding="utf-8") as f:
    JWKS = jwt.PyJWKSet.from_dict(json.load(f))
KEYS = {key.key_id: key for key in JWKS.keys}

app = FastAPI()


def verify_token(request: Request) -> dict:
    """The bearer check: RS256 signature, iss, aud and exp, as the reference peer does it."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise HTTPException(401, "missing token", headers={"WWW-Authenticate": 'Bearer realm="agui"'})
    token = header[7:]
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = KEYS[kid]
        return jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
    except (jwt.PyJWTError, KeyError) as error:
        raise HTTPException(
            401, "invalid token", headers={"WWW-Authenticate": 'Bearer realm="agui", error="invalid_token"'}
        ) from error


def plan(input_data: RunAgentInput) -> tuple[int, int, int]:
    """Parses ``/stream <n> [size] [delay_ms]`` from the last user message."""
    text = ""
    for message in reversed(input_data.messages):
        if message.role == "user" and isinstance(message.content, str):
            text = message.content.strip()
            break
    numbers = text[len("/stream"):].split() if text.startswith("/stream") else []

    def number(i: int, default: int) -> int:
        try:
            return max(int(numbers[i]), 0)
        except (IndexError, ValueError):
            return default

    return min(number(0, 1), 1_000_000), min(max(number(1, 16), 1), 65_536), min(number(2, 0), 60_000)


@app.post("/chat")
async def chat(input_data: RunAgentInput, request: Request, _claims: dict = Depends(verify_token)):
    encoder = EventEncoder(accept=request.headers.get("accept"))
    count, size, delay_ms = plan(input_data)

    async def events():
        message_id = str(uuid.uuid4())
        yield encoder.encode(
            RunStartedEvent(
                type=EventType.RUN_STARTED,
                thread_id=input_data.thread_id,
                run_id=input_data.run_id,
                protocol_version=PROTOCOL_VERSION,
            )
        )
        yield encoder.encode(
            TextMessageStartEvent(type=EventType.TEXT_MESSAGE_START, message_id=message_id, role="assistant")
        )
        for i in range(count):
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            yield encoder.encode(
                TextMessageContentEvent(
                    type=EventType.TEXT_MESSAGE_CONTENT, message_id=message_id, delta=chr(97 + i % 26) * size
                )
            )
        yield encoder.encode(TextMessageEndEvent(type=EventType.TEXT_MESSAGE_END, message_id=message_id))
        yield encoder.encode(
            RunFinishedEvent(type=EventType.RUN_FINISHED, thread_id=input_data.thread_id, run_id=input_data.run_id)
        )

    return StreamingResponse(events(), media_type=encoder.get_content_type())


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
