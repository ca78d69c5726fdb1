"""Run a blocking delta iterator in its own thread and stream it as SSE; stop it when the client goes."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from ladder.errors import LadderError
from ladder.server.limits import Counter

log = logging.getLogger("ladder.server")
_END = object()


def sse(obj: dict | str) -> str:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {data}\n\n"


async def pump(make_iter: Callable[[], Iterator], counter: Counter) -> AsyncIterator:
    """Items of `make_iter()` produced in a worker thread.

    When the consumer stops (the client disconnected and the response task was
    cancelled), the worker sees `stop` before the next item and closes the iterator,
    which ends generation in the backend and releases the in-flight count.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def put(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down)
            stop.set()

    def work() -> None:
        with counter.generating():
            it = None
            try:
                it = make_iter()
                for item in it:
                    if stop.is_set():
                        break
                    put(item)
            except LadderError as e:
                put(e)
            except Exception as e:  # reported to the client as an error event, logged here
                log.exception("stream failed")
                put(e)
            finally:
                if it is not None and hasattr(it, "close"):
                    try:
                        it.close()
                    except Exception:
                        log.exception("closing the stream failed")
                put(_END)

    threading.Thread(target=work, name="ladder-stream", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            yield item
    finally:
        stop.set()


def error_event(e: Exception) -> dict:
    if isinstance(e, LadderError):
        return {"error": {"message": e.message[:500], "type": e.error_type, "param": e.param, "code": e.code}}
    return {
        "error": {
            "message": f"internal server error ({type(e).__name__})",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
