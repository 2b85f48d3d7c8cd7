"""The checker's less travelled paths, each with the row a user reads: a grid point the model
cannot take, an answer that divides by zero only under the question's assumptions, an O(...)
bound with the wrong leading terms, an answer equal to the derivation on every grid point
but not as a formula (the counterexample then comes from a search), and another family's
missing, unreadable and unknown answers. Expected values are worked out by hand below."""

import pytest

from analysis import checker
from analysis.checker import ExtraCheck, check_answers, check_question
from analysis.questions import load_questions
from analysis.verdicts import Verdict

TINY = {"T": (2, 3), "D": (4,), "L": (1, 2), "H": (2,), "V": (5,)}


@pytest.fixture(scope="module")
def questions():
    return load_questions()


def test_a_grid_point_whose_width_the_heads_do_not_divide_is_refused(questions):
    q = questions["transformer.layer.mlp.flops"]
    with pytest.raises(
        ValueError, match=r"^grid point \{'D': 5, 'H': 2\}: D must be divisible by H$"
    ):
        checker._full_sizes(q, {"D": 5, "H": 2})
    assert checker._full_sizes(q, {"D": 6, "H": 2})["D"] == 6  # 6 = 2 heads of 3


@pytest.mark.parametrize("text", ["T/(B-1)", "12TLD^2/(E-D)"])
def test_an_answer_dividing_by_zero_under_the_assumptions_is_unread(questions, text):
    # rnn.train.flops assumes B = 1 and E = D: B - 1 and E - D are zero there
    row = check_question(questions["rnn.train.flops"], text, TINY)
    assert row["verdict"] == Verdict.UNPARSED
    assert row["reasoning"] == (
        "could not read the answer: it divides by zero under the stated assumptions (B = 1, E = D)."
    )
    assert row["counterexample"] is None


def test_a_bound_with_other_leading_terms_is_incorrect_and_names_both(questions):
    # derived 12 D^2 L T - 2 D^2 L: leading D^2 L T, not the answer's T^3
    row = check_question(questions["rnn.train.flops"], "O(T^3)", TINY)
    assert row["verdict"] == Verdict.INCORRECT
    assert row["reasoning"].startswith(
        "an O(...) bound whose leading terms (T^3) are not the derived expression's "
        "(D^2*L*T; derived 12*D^2*L*T - 2*D^2*L)"
    )
    assert row["counterexample"] is None  # a bound has no value to compare


def test_an_answer_equal_on_the_grid_only_gets_a_counterexample_off_it(questions):
    # derived + (T-2)(T-3)D: equal at the grid's T = 2 and 3; the search over sizes 1..9
    # (D, L, T in name order) differs first at D = L = T = 1: answer 12 - 2 + (-1)(-2) = 12,
    # derived 12 - 2 = 10; no measurement there (None)
    row = check_question(questions["rnn.train.flops"], "12*D^2*L*T - 2*D^2*L + (T-2)*(T-3)*D", TINY)
    assert row["verdict"] == Verdict.INCORRECT
    assert row["counterexample"] == {
        "sizes": {"D": 1, "L": 1, "T": 1},
        "answered": 12,
        "derived": 10,
        "measured": None,
    }


def _family(monkeypatch, check):
    monkeypatch.setitem(
        checker.EXTRA_CHECKS,
        "toy.",
        ExtraCheck("toy.", check, lambda: [{"id": "toy.x", "question": "What is x?"}]),
    )


def test_another_familys_blank_unreadable_and_unknown_answers(questions, monkeypatch):
    def check(qid, text):
        raise ValueError(f"{qid}: no number in {text!r}.")

    _family(monkeypatch, check)
    frame = check_answers({"toy.x": "  "}, TINY, questions)
    row = frame.iloc[0]
    assert (row["verdict"], row["question"], row["reasoning"]) == (
        Verdict.MISSING,
        "What is x?",
        "no answer given.",
    )
    row = check_answers({"toy.x": "abc"}, TINY, questions).iloc[0]
    # the check's message, its id prefix and last period stripped, then one period
    assert (row["verdict"], row["question"], row["reasoning"]) == (
        Verdict.UNPARSED,
        "What is x?",
        "could not read the answer: no number in 'abc'.",
    )
    row = check_answers({"toy.y": "1"}, TINY, questions).iloc[0]
    assert row["verdict"] == Verdict.UNKNOWN_ID and "toy.x" in row["reasoning"]


def test_a_blank_and_an_unreadable_answer_keep_every_field(questions):
    q = questions["rnn.train.flops"]
    for text, verdict in (("  ", Verdict.MISSING), ("T +* D", Verdict.UNPARSED)):
        row = check_question(q, text, TINY)
        assert (row["id"], row["question"], row["answer"], row["verdict"]) == (
            "rnn.train.flops",
            q.question,
            text,
            verdict,
        )
        # nothing measured; the derivation is still shown (12TLD^2 - 2LD^2, from the
        # question's layer counts: tests/test_checker.py)
        assert (row["derived"], row["counterexample"], row["section"], row["measured_points"]) == (
            "12*D^2*L*T - 2*D^2*L",
            None,
            q.section,
            0,
        )
        assert q.section != ""


def test_an_unknown_id_row_names_the_closest_id_or_none(questions):
    frame = check_answers({"rnn.train.flop": "1", "zzz": "2"}, TINY, questions)
    near, far = frame.iloc[0], frame.iloc[1]
    assert (
        near["id"],
        near["question"],
        near["answer"],
        near["verdict"],
        near["derived"],
        near["section"],
        near["measured_points"],
    ) == ("rnn.train.flop", "", "1", Verdict.UNKNOWN_ID, "", "", 0)
    assert near["reasoning"] == (
        "unknown question id 'rnn.train.flop' (did you mean "
        "'rnn.train.flops'?); `charlm check-answers --list` shows "
        "the ids."
    )
    assert far["answer"] == "2"
    assert far["reasoning"] == (
        "unknown question id 'zzz'; `charlm check-answers --list` shows the ids."
    )


def test_another_familys_rows_keep_the_id_and_the_text(questions, monkeypatch):
    def check(qid, text):
        raise ValueError(f"{qid}: no number in X.")

    monkeypatch.setitem(
        checker.EXTRA_CHECKS, "toy.", ExtraCheck("toy.", check, lambda: [{"id": "toy.x"}])
    )  # a question row without its text
    frame = check_answers({"toy.x": " ", "toy.x2": "b"}, TINY, questions)
    blank, unknown = frame.iloc[0], frame.iloc[1]
    assert (blank["id"], blank["answer"], blank["question"]) == ("toy.x", " ", "")
    assert (unknown["id"], unknown["answer"], unknown["verdict"]) == (
        "toy.x2",
        "b",
        Verdict.UNKNOWN_ID,
    )
    row = check_answers({"toy.x": "a"}, TINY, questions).iloc[0]
    # only the message's last period goes: "... in X." keeps its X
    assert (row["id"], row["answer"], row["reasoning"]) == (
        "toy.x",
        "a",
        "could not read the answer: no number in X.",
    )


def test_a_bound_names_its_leading_terms_sorted(questions):
    row = check_question(questions["rnn.train.flops"], "O(T^3 + D^3)", TINY)
    assert row["reasoning"].startswith(
        "an O(...) bound whose leading terms (D^3 + T^3) are not the derived expression's (D^2*L*T;"
    )


def test_a_submission_is_read_through_the_template_on_the_given_grid(tmp_path):
    from analysis.submissions import load_template

    text = tmp_path / "hw.md"
    text.write_text(
        "How many FLOPs are needed to train on a sequence of T tokens?\n\n"
        "YOUR ANSWER: $12TLD^2 - 2LD^2$\n"
    )
    frame = checker.check_file(text, TINY)
    assert list(frame["id"]) == list(load_template().ids)  # every template id is a row
    row = frame.set_index("id").loc["rnn.train.flops"]
    assert row["verdict"] == Verdict.CORRECT and "12TLD^2 - 2LD^2" in row["extracted"]
    assert row["measured_points"] == 4  # TINY: T in (2, 3) x L in (1, 2)
    other = frame.set_index("id").loc["rnn.generate.flops"]
    assert (other["verdict"], other["extracted"]) == (Verdict.MISSING, "")


def test_a_file_of_unknown_ids_names_the_question_bank(tmp_path):
    answers = tmp_path / "a.toml"
    answers.write_text('"nope.x" = "1"\n')
    with pytest.raises(ValueError) as err:
        checker.check_file(answers, TINY)
    assert str(err.value) == (
        f"{answers}: no id is a question of the homework's questions (unknown question id "
        "'nope.x'); `charlm check-answers --list` shows the ids, --questions FILE takes a "
        "course's own"
    )


def test_the_question_list_states_assumptions_and_symbols(questions):
    row = checker.list_questions().set_index("id").loc["rnn.generate.flops"]
    # analysis/data/homework_questions.toml's assumptions of the RNN questions, in order
    assert row["assumptions"] == (
        "single sequence (B = 1); biases and other small calculations ignored; 2ABC FLOPs "
        "for an (A x B) @ (B x C) matmul; no final projection to the vocabulary"
    )
    assert row["symbols"].startswith(
        "T (sequence length (tokens generated or trained on)), "
        "D (model / hidden dimension), L (layers)"
    )
