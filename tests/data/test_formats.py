"""Reading every accepted dataset format, and line-numbered errors for every kind of bad line at once."""

from __future__ import annotations

import json

import pytest

from ladder.data.formats import DatasetError, Example, label_of, parse_dataset, read_dataset, write_jsonl


def chat(user: str, answer: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer, **extra}]}


def write_lines(path, lines: list) -> None:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")


def test_chat_jsonl_reads_messages_and_weights(tmp_path):
    f = tmp_path / "train.jsonl"
    multi = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "draft", "weight": 0},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "hello"},
        ]
    }
    write_lines(f, [chat("2+2?", "4"), "", multi])
    exs = read_dataset(f)
    assert [e.line for e in exs] == [1, 3]
    assert exs[0].messages == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    assert exs[1].messages[2] == {"role": "assistant", "content": "draft", "weight": 0}
    assert label_of(exs[1]) == "hello"


def test_system_is_added_where_missing(tmp_path):
    f = tmp_path / "train.jsonl"
    own = {"messages": [{"role": "system", "content": "own"}, *chat("c", "d")["messages"]]}
    write_lines(f, [chat("a", "b"), own])
    exs = read_dataset(f, system="Classify.")
    assert exs[0].messages[0] == {"role": "system", "content": "Classify."}
    assert exs[1].messages[0] == {"role": "system", "content": "own"}


def test_prompt_completion_jsonl(tmp_path):
    f = tmp_path / "pc.jsonl"
    write_lines(f, [{"prompt": "Capital of France?", "completion": " Paris"}])
    (ex,) = read_dataset(f, system="Answer.")
    assert ex.messages == [
        {"role": "system", "content": "Answer."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
    ]


def test_csv_with_named_columns_reports_source_lines(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text('text,category,id\n"card, lost",lost_card,1\n"two\nlines",top_up,2\n"",x,3\nok,y,4\n')
    exs, problems = parse_dataset(f, input_col="text", output_col="category")
    assert [(e.line, e.messages[0]["content"], label_of(e)) for e in exs] == [
        (2, "card, lost", "lost_card"),
        (3, "two\nlines", "top_up"),
        (6, "ok", "y"),
    ]
    assert [(p.line, p.field) for p in problems] == [(5, "text")]


def test_csv_without_columns_says_which_to_name(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("text,category\nhello,greet\n")
    with pytest.raises(DatasetError) as e:
        read_dataset(f)
    assert "--input-col" in str(e.value) and "text, category" in str(e.value)


def test_jsonl_with_named_columns_and_numeric_labels(tmp_path):
    f = tmp_path / "cols.jsonl"
    write_lines(f, [{"q": "good film", "y": 1, "id": 7}, {"q": "bad film", "label": 0}])
    exs, problems = parse_dataset(f, input_col="q", output_col="y")
    assert label_of(exs[0]) == "1"
    assert len(problems) == 1 and problems[0].line == 2 and problems[0].field == "y"


def test_every_bad_line_is_reported_with_its_line_and_field(tmp_path):
    f = tmp_path / "bad.jsonl"
    A = {"role": "assistant", "content": "a"}
    write_lines(
        f,
        [
            chat("fine", "ok"),  # 1 good
            '{"messages": [{"role": "user", "content": "x"}',  # 2 bad JSON
            {"text": "no messages here"},  # 3 missing messages
            {"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]},  # 4 role
            chat("", "y"),  # 5 empty content
            {"messages": [{"role": "user", "content": "only a question"}]},  # 6 no assistant
            chat("q", "a", weight=2),  # 7 bad weight
            {"messages": chat("q", "a")["messages"], "id": 12},  # 8 unknown top-level key
            {"messages": [{"role": "user", "content": "q", "weight": 1}, A]},  # 9 weight on a user message
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 5}]},  # 10
            {"messages": [{"role": "user", "content": "q", "tool_calls": []}, A]},  # 11 tool calls
            "[1, 2]",  # 12 not an object
            chat("also fine", "ok"),  # 13 good
        ],
    )
    exs, problems = parse_dataset(f)
    assert [e.line for e in exs] == [1, 13]
    found = {(p.line, p.field) for p in problems}
    assert found == {
        (2, ""),
        (3, "messages"),
        (4, "messages[0].role"),
        (5, "messages[0].content"),
        (6, "messages"),
        (7, "messages[1].weight"),
        (8, "id"),
        (9, "messages[0].weight"),
        (10, "messages[1].content"),
        (11, "messages[0].tool_calls"),
        (12, ""),
    }
    assert all(p.hint for p in problems)
    with pytest.raises(DatasetError) as e:
        read_dataset(f)
    assert len(e.value.problems) == 11
    text = str(e.value)
    assert "11 problems" in text and "line 4, messages[0].role: unknown role 'bot'" in text


def test_error_message_is_bounded_but_problems_are_complete(tmp_path):
    f = tmp_path / "many.jsonl"
    write_lines(f, ["not json"] * 50)
    with pytest.raises(DatasetError) as e:
        read_dataset(f)
    assert len(e.value.problems) == 50
    text = str(e.value)
    shown = text.count("\n  line ")
    # the count, the first problems, and how many more: all inside the HTTP layer's 2,000 characters
    assert text.startswith(f"{f}: 50 problems:") and 10 <= shown <= 20
    assert f"and {50 - shown} more" in text and "ladder data validate" in text and len(text) <= 2000


def test_empty_and_missing_files(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_text("\n")
    with pytest.raises(DatasetError, match="no examples"):
        read_dataset(f)
    with pytest.raises(Exception, match="no such file"):
        read_dataset(tmp_path / "absent.jsonl")


def test_invalid_utf8_is_reported_on_its_line(tmp_path):
    f = tmp_path / "latin1.jsonl"
    bad = '{"messages": "caf\xe9"}'.encode("latin-1")
    f.write_bytes(json.dumps(chat("a", "b")).encode() + b"\n" + bad + b"\n")
    _, problems = parse_dataset(f)
    assert [(p.line, "UTF-8" in p.message) for p in problems] == [(2, True)]


def test_write_jsonl_round_trips(tmp_path):
    exs = [Example([{"role": "user", "content": "é"}, {"role": "assistant", "content": "b", "weight": 1}], 1)]
    out = write_jsonl(exs, tmp_path / "sub" / "out.jsonl")
    assert [e.messages for e in read_dataset(out)] == [exs[0].messages]
    assert not list((tmp_path / "sub").glob(".*tmp*"))


def test_line_separators_inside_strings_survive_to_the_trainer(tmp_path):
    """write_jsonl keeps U+2028, U+2029 and NEL raw; every reader (the worker's too) splits at \\n only."""
    from ladder.tuning.worker import _read_jsonl

    text = "one\u2028two\u2029three\u0085four"
    exs = [
        Example([{"role": "user", "content": f"{text} {i}"}, {"role": "assistant", "content": "b"}], i)
        for i in range(3)
    ]
    out = write_jsonl(exs, tmp_path / "train.jsonl")
    assert [m[0]["content"] for m in _read_jsonl(out)] == [f"{text} {i}" for i in range(3)]
    assert [e.line for e in read_dataset(out)] == [1, 2, 3]


def test_tsv_is_read_with_tabs(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("text\tlabel\nhello, world\tgreeting\n")
    (ex,) = read_dataset(f, input_col="text", output_col="label")
    assert ex.messages[0]["content"] == "hello, world" and label_of(ex) == "greeting"
