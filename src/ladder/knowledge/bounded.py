"""Parsing bounded in size, time and memory: risky formats run in a worker process that can be killed."""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import threading

from ladder.errors import InvalidInput
from ladder.knowledge.parsers import ParsedDoc, detect_format, parse

MAX_BYTES = int(os.environ.get("LADDER_KB_MAX_BYTES", 50 * 1024 * 1024))
PARSE_TIMEOUT_S = float(os.environ.get("LADDER_KB_PARSE_TIMEOUT", 60))
WORKER_MEMORY_BYTES = 3 * 1024**3
# Formats whose parsers walk untrusted binary structure (PDF objects, zipped XML, deep HTML);
# text, Markdown, CSV and JSONL are parsed in-process in linear time.
ISOLATED = {"pdf", "docx", "html"}

_pool = None
_pool_lock = threading.Lock()


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass


def _parse_in_worker(filename: str, data: bytes, fmt: str, text_column: str | None):
    try:
        return "ok", parse(filename, data, fmt, text_column)
    except InvalidInput as e:
        return "error", e.message
    except MemoryError:
        return "error", f"{filename}: parsing needed more than {WORKER_MEMORY_BYTES // 1024**3} GiB of memory"
    except Exception as e:  # a parser bug must still come back as a message about this file
        return "error", f"{filename}: could not be parsed ({type(e).__name__}: {e})"


def _get_pool():
    global _pool
    if _pool is None:
        # spawn, not fork: the parent may hold torch/tokenizer threads that a fork would copy half-way.
        _pool = mp.get_context("spawn").Pool(1, initializer=_limit_memory)
    return _pool


def _kill_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.terminate()
        _pool.join()
        _pool = None


atexit.register(_kill_pool)


def check_upload(filename: str, data: bytes, max_bytes: int | None = None) -> str:
    """The upload's format, after the checks that need no parsing (type, size, not empty)."""
    fmt = detect_format(filename)
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if len(data) > limit:
        raise InvalidInput(
            f"{filename}: {len(data):,} bytes is over the size limit of {limit:,} bytes (LADDER_KB_MAX_BYTES)",
            param="file",
        )
    if not data:
        raise InvalidInput(f"{filename}: the file is empty", param="file")
    return fmt


def parse_upload(
    filename: str,
    data: bytes,
    *,
    text_column: str | None = None,
    max_bytes: int | None = None,
    timeout_s: float | None = None,
    isolate: bool = True,
) -> tuple[str, list[ParsedDoc]]:
    """(format, documents) for one upload, or InvalidInput naming the file and the reason."""
    fmt = check_upload(filename, data, max_bytes)
    if not isolate or fmt not in ISOLATED:
        return fmt, parse(filename, data, fmt, text_column)
    timeout = PARSE_TIMEOUT_S if timeout_s is None else timeout_s
    with _pool_lock:
        pool = _get_pool()
        job = pool.apply_async(_parse_in_worker, (filename, data, fmt, text_column))
        try:
            status, value = job.get(timeout)
        except mp.TimeoutError:
            _kill_pool()
            raise InvalidInput(
                f"{filename}: parsing took longer than the limit of {timeout:g} s "
                "(LADDER_KB_PARSE_TIMEOUT); nothing was added",
                param="file",
            ) from None
        except Exception as e:  # the worker died (killed for memory, crashed in C code)
            _kill_pool()
            raise InvalidInput(f"{filename}: the parser failed ({type(e).__name__}: {e})", param="file") from None
    if status == "error":
        raise InvalidInput(value, param="file")
    return fmt, value
