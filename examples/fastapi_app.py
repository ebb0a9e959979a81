# examples/fastapi_app.py
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from recdb import AsyncClient
from recdb.client import InvalidArgument, Recommendation


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with AsyncClient() as client:  # one pool per process, opened in its event loop
        app.state.recdb = client
        yield


app = FastAPI(lifespan=lifespan)


@app.exception_handler(InvalidArgument)  # unknown kind or item, bad value, k out of range
async def invalid_argument(request: Request, e: InvalidArgument) -> JSONResponse:
    return JSONResponse({"detail": e.message, "sqlstate": e.sqlstate}, status_code=422)


@app.post("/users/{user_id}/events", status_code=204)
async def track(user_id: int, item_id: int, kind: str) -> None:
    await app.state.recdb.track(user_id, item_id, kind)


@app.get("/users/{user_id}/recommendations")
async def recommendations(user_id: int, k: int = 20) -> list[Recommendation]:
    return await app.state.recdb.rerank(user_id, k=k)
