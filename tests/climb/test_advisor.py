"""The advisor: start rung, reasons and data minimum follow from the answers."""

from ladder.climb.advisor import Answers, advise


def test_prompt_first_for_a_plain_narrow_task():
    a = advise(Answers(task="classification", examples=50))
    assert a.start == "prompt" and a.minimum == 200 and not a.fine_tune_allowed
    assert "fine-tune" not in a.path and any("below the 200" in r for r in a.reasons)


def test_external_changing_knowledge_starts_at_rag():
    a = advise(Answers(task="open", knowledge_external=True, knowledge_changes=True, examples=10))
    assert a.start == "rag" and "rag" in a.path
    assert any("knowledge base" in r for r in a.reasons)


def test_enough_data_and_cost_pressure_opens_fine_tuning():
    a = advise(Answers(task="classification", examples=5000, low_cost=True))
    assert a.fine_tune_allowed and "fine-tune" in a.path and a.start == "prompt"
    assert any("small tuned model" in r for r in a.reasons)
    lines = "\n".join(a.lines())
    assert "Start at: prompt" in lines and "5000" in lines
