"""Stop sequences over streamed text: cut at the first stop, hold back what could still start one.

Stops are literal strings (never patterns), at most MAX_STOPS of at most MAX_STOP_CHARS each, so
scanning costs at most MAX_STOPS x MAX_STOP_CHARS steps per feed beyond reading the new text once.
"""

from __future__ import annotations

from ladder.errors import InvalidInput

MAX_STOPS = 4  # OpenAI's limit
MAX_STOP_CHARS = 200


def stop_list(value: object, *, param: str = "stop") -> list[str]:
    """Stop sequences as a list; one string is one sequence (never split into its characters)."""
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) for s in stops):
        raise InvalidInput(f"{param} must be a string or a list of strings", param=param)
    if len(stops) > MAX_STOPS or any(not s or len(s) > MAX_STOP_CHARS for s in stops):
        raise InvalidInput(
            f"{param}: at most {MAX_STOPS} non-empty sequences of at most {MAX_STOP_CHARS} characters", param=param
        )
    return list(stops)


class StopScanner:
    """Feed the full generated text so far; get back the part safe to emit.

    The tail that is a prefix of some stop sequence is held back until it is decided,
    so a streamed answer never shows the beginning of a stop sequence.
    """

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.emitted = 0
        self.stopped = False

    def feed(self, text: str) -> str:
        """New safe text given the whole text generated so far (sets `stopped` on a hit)."""
        cut = len(text)
        # A stop that ends in the new text starts at most `longest - 1` characters before it: searching
        # from there keeps a whole stream linear instead of rescanning every earlier character per token.
        start = max(0, self.emitted - self.longest + 1)
        for s in self.stops:
            i = text.find(s, start)
            if i != -1 and i < cut:
                cut, self.stopped = i, True
        if not self.stopped:
            # An incomplete UTF-8 sequence decodes to U+FFFD; wait for the rest of it.
            while cut > self.emitted and text[cut - 1] == "\ufffd":
                cut -= 1
            for s in self.stops:
                for k in range(min(len(s) - 1, cut - self.emitted), 0, -1):
                    if text[cut - k : cut] == s[:k]:
                        cut -= k
                        break
        new = text[self.emitted : cut] if cut > self.emitted else ""
        self.emitted = max(self.emitted, cut)
        return new

    def final(self, text: str) -> str:
        """Everything left to emit once generation has ended without a stop."""
        if self.stopped:
            return ""
        new = text[self.emitted :]
        self.emitted = len(text)
        return new


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """The text up to the first stop sequence, and whether one was found."""
    cut, hit = len(text), False
    for s in stops:
        i = text.find(s) if s else -1
        if i != -1 and i < cut:
            cut, hit = i, True
    return text[:cut], hit
