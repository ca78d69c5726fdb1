"""Stop sequences over streamed text."""

from ladder.models.text_stops import StopScanner, cut_at_stop


def feed_all(pieces: list[str], stops: list[str]) -> tuple[str, bool]:
    scanner, text, out = StopScanner(stops), "", ""
    for p in pieces:
        text += p
        out += scanner.feed(text)
        if scanner.stopped:
            return out, True
    return out + scanner.final(text), False


def test_stream_never_shows_the_start_of_a_stop_sequence():
    scanner = StopScanner(["###"])
    assert scanner.feed("answer #") == "answer "
    assert scanner.feed("answer ##") == ""
    assert scanner.feed("answer ##x") == "##x"
    assert not scanner.stopped


def test_stop_split_across_pieces_is_found():
    assert feed_all(["The answer", " is 4.", "\nUs", "er: more"], ["\nUser:"]) == ("The answer is 4.", True)


def test_no_stop_emits_everything():
    assert feed_all(["ab", "c#", "#"], ["###"]) == ("abc##", False)


def test_incomplete_utf8_is_held_back():
    scanner = StopScanner([])
    assert scanner.feed("caf\ufffd") == "caf"
    assert scanner.feed("café") == "é"


def test_cut_at_first_of_several_stops():
    assert cut_at_stop("one. two! three", ["!", "."]) == ("one", True)
    assert cut_at_stop("none here", ["###"]) == ("none here", False)
