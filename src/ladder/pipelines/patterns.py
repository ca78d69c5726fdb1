"""User-supplied regular expressions, matched under a time and size bound so that no pattern can hold the server.

Every match of a pattern a user wrote (a bot's regex parser, a JSON Schema's `pattern` and
`patternProperties`) against text a model wrote goes through here. The `regex` package is used
instead of `re` because it releases the GIL while matching a str (other threads, such as the one
answering /api/health, keep running) and takes a `timeout=`; `re` would hold the interpreter for
as long as a catastrophic pattern such as `(.+)+Z` backtracks, i.e. for minutes.
"""

from __future__ import annotations

import time

import regex

from ladder.errors import InvalidInput

MATCH_SECONDS = 0.1  # one match; ordinary patterns on model-sized text take microseconds
CHECK_SECONDS = 0.25  # all the matches made while checking one output
MAX_PATTERN_CHARS = 2_000
MAX_SUBJECT_CHARS = 100_000  # about 25,000 tokens, more than the longest answer a server allows


class PatternLimitExceeded(Exception):
    """A match was refused or cut short by the bounds; the text counts as not matching."""


def compile_pattern(pattern: object, *, param: str = "pattern", flags: int = 0) -> regex.Pattern:
    """The compiled pattern, or InvalidInput naming `param` and what is wrong with it.

    Called when a pattern is accepted (bot creation, a response_format), so a bad one is refused
    there and never first seen at answer time.
    """
    if not isinstance(pattern, str):
        raise InvalidInput(
            f"{param} must be a string (a regular expression), not {type(pattern).__name__}", param=param
        )
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidInput(
            f"{param} has {len(pattern):,} characters; a pattern may have at most {MAX_PATTERN_CHARS:,}", param=param
        )
    try:
        return regex.compile(pattern, flags)
    except (regex.error, ValueError, OverflowError, RecursionError) as e:
        raise InvalidInput(f"{param} {pattern[:200]!r} is not a valid regex: {e}", param=param) from e


class Budget:
    """The time left for the matches of one check; each match gets at most MATCH_SECONDS of it.

    One budget per output checked, so an output with many strings cannot add up many bounded
    matches into a long hold of a worker thread.
    """

    def __init__(self, seconds: float = CHECK_SECONDS):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def _timeout(self, pattern: str) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise PatternLimitExceeded(
                f"the {self.seconds:g} s allowed for matching patterns against this output ran out before "
                f"{_shown(pattern)} was tried"
            )
        return min(MATCH_SECONDS, left)

    def _run(self, method: str, pattern: str, text: str, flags: int) -> regex.Match | None:
        if len(text) > MAX_SUBJECT_CHARS:
            raise PatternLimitExceeded(
                f"the text has {len(text):,} characters; patterns are matched against at most {MAX_SUBJECT_CHARS:,}"
            )
        compiled = compile_pattern(pattern, flags=flags)  # `regex` caches compiled patterns
        timeout = self._timeout(pattern)
        try:
            return getattr(compiled, method)(text, timeout=timeout)
        except TimeoutError as e:
            raise PatternLimitExceeded(
                f"matching {_shown(pattern)} took longer than {timeout:.2g} s (it backtracks catastrophically "
                "on this text); the text counts as not matching"
            ) from e

    def search(self, pattern: str, text: str, flags: int = 0) -> regex.Match | None:
        """Like `re.search`; raises PatternLimitExceeded instead of running past the bounds."""
        return self._run("search", pattern, text, flags)

    def fullmatch(self, pattern: str, text: str, flags: int = 0) -> regex.Match | None:
        """Like `re.fullmatch`; raises PatternLimitExceeded instead of running past the bounds."""
        return self._run("fullmatch", pattern, text, flags)


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:80] + "…")
