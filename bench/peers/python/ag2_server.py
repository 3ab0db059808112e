"""The AG2 peer for agui-server's benchmark (bench/README.md).

ag2 1.2.1 ``AGUIStream`` (module ``ag2.ag_ui``, extra ``ag2[ag-ui]``) wrapping a real ``Agent``
whose model is the benchmark's mock OpenAI-compatible server (``OpenAIConfig(base_url=...,
streaming=True)``), mounted with ``stream.dispatch(...)`` inside FastAPI as AG2's own guide does
it, behind the same PyJWT bearer check as the Python peer (shared/reference/perf-peers.md
sections 1 and 3). It is compared only with agui-server's agent mode against the same mock.

Environment: JWKS_FILE, ISSUER, AUDIENCE, MOCK_URL (e.g. http://127.0.0.1:9100/v1).
"""

import os
from contextlib import aclosing

from ag_ui.core import RunAgentInput
from ag_ui.encoder import EventEncoder
from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from ag2 import Agent
from ag2.ag_ui import AGUIStream
from ag2.config import OpenAIConfig

from server import verify_token  # the same JWT dependency as the Python peer

agent = Agent(
    "assistant",
    "You are a helpful assistant.",
    config=OpenAIConfig(model="gpt-4o-mini", base_url=os.environ["MOCK_URL"], api_key="sk-mock", streaming=True),
)
stream = AGUIStream(agent)

app = FastAPI()


@app.post("/chat")
async def chat(input_data: RunAgentInput, request: Request, _claims: dict = Depends(verify_token)):
    accept = request.headers.get("accept")

    async def events():
        async with aclosing(stream.dispatch(input_data, accept=accept)) as frames:
            async for frame in frames:
                yield frame

    return StreamingResponse(events(), media_type=EventEncoder(accept=accept).get_content_type())


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
