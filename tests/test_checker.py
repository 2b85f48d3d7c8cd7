"""The answer checker: verdicts from symbolic comparison, confirmed against measurement."""

import json
from dataclasses import replace

import pytest
import sympy as sp

from analysis import checker
from analysis.checker import (
    DerivationMismatch,
    ExtraCheck,
    check_answers,
    check_question,
    compare,
    leading_part,
)
from analysis.formulas import D, L, T
from analysis.questions import HOMEWORK_ANSWERS, load_answers, load_questions
from analysis.verdicts import Verdict
from charlm.cli import main

TINY = {"T": (2, 3), "D": (4,), "L": (1, 2), "H": (2,), "V": (5,)}
REQUIRED_IDS = {
    "rnn.generate.flops", "rnn.train.flops", "rnn.generate.sequential_matmuls",
    "rnn.train.sequential_matmuls", "transformer.layer.mlp.flops", "transformer.layer.qkv.flops",
    "transformer.layer.scores.flops", "transformer.layer.values.flops",
    "transformer.layer.out_proj.flops", "transformer.layer.attention.flops",
    "transformer.generate.flops", "transformer.forward.flops", "transformer.backward.flops",
    "transformer.layer.sequential_matmuls", "transformer.forward.sequential_matmuls",
    "transformer.backward.sequential_matmuls", "transformer.generate.sequential_matmuls",
}


@pytest.fixture(scope="module")
def questions():
    return load_questions()


def _check(questions, qid, text):
    return check_question(questions[qid], text, TINY)


def _verdict(questions, qid, text):
    return _check(questions, qid, text)["verdict"]


def test_every_required_question_id_exists_and_the_homework_answers_them(questions):
    assert REQUIRED_IDS <= set(questions)
    assert REQUIRED_IDS <= set(load_answers(HOMEWORK_ANSWERS))


@pytest.mark.parametrize("text", [
    "24LTD^2 + 4LT^2D",
    "24*L*T*D**2 + 4*L*T**2*D",
    "24 L T D² + 4 L T² D",
    "4LT²D + 24LTD²",
    "L(24TD^2 + 4T^2D)",
    "4LTD(6D + T)",
])
def test_equivalent_spellings_of_a_correct_answer_are_correct(questions, text):
    row = _check(questions, "transformer.forward.flops", text)
    assert row["verdict"] is Verdict.CORRECT and row["counterexample"] is None


def test_incorrect_answer_gets_a_counterexample_that_measurement_confirms(questions):
    row = _check(questions, "rnn.train.flops", "8TLD^2")
    assert row["verdict"] is Verdict.INCORRECT
    ce = row["counterexample"]
    s = ce["sizes"]
    assert ce["answered"] == 8 * s["T"] * s["L"] * s["D"] ** 2
    # by hand: forward 4TLD^2 + backward 8TLD^2 less W_hh's input gradient at step 0 (2LD^2)
    by_hand = 12 * s["T"] * s["L"] * s["D"] ** 2 - 2 * s["L"] * s["D"] ** 2
    assert ce["derived"] == ce["measured"] == by_hand
    assert "backward" in row["reasoning"]  # it is the backward pass alone


def test_exact_answer_with_all_terms_is_correct(questions):
    assert _verdict(questions, "rnn.train.flops", "12TLD^2 - 2LD^2") is Verdict.CORRECT


def test_answer_dropping_only_lower_order_terms_is_correct_with_a_note(questions):
    row = _check(questions, "rnn.train.flops", "12TLD^2")
    assert row["verdict"] is Verdict.CORRECT
    assert "lower-order" in row["reasoning"] and "2*D^2*L" in row["reasoning"]


def test_dropping_lower_order_terms_is_incorrect_when_the_question_forbids_it(questions):
    strict = replace(questions["rnn.train.flops"], lower_order_ok=False)
    assert check_question(strict, "12TLD^2", TINY)["verdict"] is Verdict.INCORRECT


def test_depth_answers_follow_the_wavefront(questions):
    assert _verdict(questions, "rnn.train.sequential_matmuls", "2(T + L - 1)") is Verdict.CORRECT
    row = _check(questions, "rnn.train.sequential_matmuls", "2TL")
    assert row["verdict"] is Verdict.INCORRECT and "L = 1" in row["reasoning"]


def test_generation_depth_counts_one_forward_per_token(questions):
    assert _verdict(questions, "transformer.generate.sequential_matmuls", "6LT") is Verdict.CORRECT
    assert _verdict(questions, "transformer.generate.sequential_matmuls", "6L") is Verdict.INCORRECT


def test_per_head_answers_use_j(questions):
    assert _verdict(questions, "transformer.layer.qkv_per_head.flops", "6JTD") is Verdict.CORRECT
    assert _verdict(questions, "transformer.layer.qkv_per_head.flops", "6TD^2") is Verdict.INCORRECT


@pytest.mark.parametrize("answer,derived,expected", [
    (6 * L, 6 * L * T, "different"),
    (T * L, T * L + T, "lower_order"),
    (T * L + T, T * L, "lower_order"),
    (2 * T * L, 2 * T + 2 * L - 2, "different"),
    (24 * L * T * D**2, 24 * L * T * D**2 + 4 * L * T**2 * D, "different"),
    (T**2, T**2, "exact"),
])
def test_comparison_rule(answer, derived, expected):
    assert compare(answer, derived, lower_order_ok=True)[0] == expected


def test_leading_part_keeps_undominated_monomials():
    expr = 12 * D**2 * L * T**2 + 12 * D**2 * L * T + 4 * D * L * T**3 + 2 * D * L * T
    assert sp.expand(leading_part(expr) - (12 * D**2 * L * T**2 + 4 * D * L * T**3)) == 0


def test_a_wrong_derivation_is_caught_by_measurement(questions):
    """The numeric check is real: measuring with the head kept disagrees with head=False."""
    broken = replace(questions["transformer.forward.flops"], measure={"total": 1})
    with pytest.raises(DerivationMismatch):
        check_question(broken, "24LTD^2 + 4LT^2D", TINY)


def test_unparsable_answer_is_a_row_naming_the_word_and_position(questions):
    # the whole unknown word is named, from where it starts (the T belongs to it); the
    # other answer of the file is still checked
    frame = check_answers({"rnn.train.flops": "8T__import__",
                           "transformer.layer.sequential_matmuls": "6"}, TINY, questions)
    bad, good = frame.to_dict("records")
    assert bad["id"] == "rnn.train.flops" and bad["verdict"] == Verdict.UNPARSED
    assert "'T__import__'" in bad["reasoning"] and "position 2" in bad["reasoning"]
    assert bad["counterexample"] is None and bad["read"] == ""
    assert good["verdict"] == Verdict.CORRECT


def test_unknown_id_is_a_row_with_the_closest_id(questions):
    frame = check_answers({"rnn.train.flop": "1", "transformer.layer.sequential_matmuls": "6"},
                          TINY, questions)
    row = frame.iloc[0]
    assert row["verdict"] == Verdict.UNKNOWN_ID
    assert "unknown question id 'rnn.train.flop' (did you mean 'rnn.train.flops'?)" \
        in row["reasoning"]
    assert frame.iloc[1]["verdict"] == Verdict.CORRECT


def test_no_answers_is_an_empty_table_with_the_columns(questions):
    frame = check_answers({}, TINY, questions)
    assert frame.empty and list(frame.columns)[: len(checker.ROW_FIELDS)] == list(
        checker.ROW_FIELDS) and checker.SEEN in frame


def test_blank_or_none_is_missing(questions):
    frame = check_answers({"rnn.train.flops": "  ", "rnn.generate.flops": None}, TINY,
                          questions)
    assert list(frame["verdict"]) == [Verdict.MISSING, Verdict.MISSING]
    assert frame.iloc[0]["derived"] == "12*D^2*L*T - 2*D^2*L"  # the reference is still shown


def test_other_families_join_the_table_by_prefix(questions, monkeypatch):
    def fake(qid, text):
        return {"id": qid, "question": "q", "answer": text, "verdict": Verdict.CORRECT,
                "derived": text, "counterexample": None, "reasoning": "r"}

    monkeypatch.setitem(checker.EXTRA_CHECKS, "toy.",
                        ExtraCheck("toy.", fake, lambda: [{"id": "toy.x", "question": "q"}]))
    frame = check_answers({"toy.x": "1", "transformer.layer.sequential_matmuls": "6"}, TINY,
                          questions)
    assert list(frame["id"]) == ["toy.x", "transformer.layer.sequential_matmuls"]
    assert "toy.x" in set(checker.list_questions()["id"])


def test_a_family_row_without_the_table_fields_is_refused(questions, monkeypatch):
    monkeypatch.setitem(checker.EXTRA_CHECKS, "toy.",
                        ExtraCheck("toy.", lambda q, t: {"id": q}, lambda: []))
    with pytest.raises(TypeError, match="without"):
        check_answers({"toy.x": "1"}, TINY, questions)


def test_bare_dotted_and_quoted_keys_read_the_same(tmp_path):
    quoted = tmp_path / "q.toml"
    quoted.write_text('"rnn.train.flops" = "12TLD^2"\n"transformer.layer.sequential_matmuls" = 6\n')
    bare = tmp_path / "b.toml"
    bare.write_text('rnn.train.flops = "12TLD^2"\ntransformer.layer.sequential_matmuls = 6\n')
    assert load_answers(quoted) == load_answers(bare) == {
        "rnn.train.flops": "12TLD^2", "transformer.layer.sequential_matmuls": "6"}


@pytest.mark.parametrize("content,match", [
    ("this is = not toml [", "not valid TOML"),
    ('"rnn.train.flops" = ["8TLD^2"]', "must be a string"),
    ("", "no answers"),
])
def test_unusable_files_are_value_errors(tmp_path, content, match):
    path = tmp_path / "a.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_answers(path)


def _cli(tmp_path, content, *flags):
    path = tmp_path / "answers.toml"
    path.write_text(content)
    return main(["check-answers", str(path), "--grid", "quick", *flags])


def test_cli_exit_codes(tmp_path, capsys):
    """0 all correct; 1 any not correct (incorrect, unparsed, asymptotic, missing, unknown
    id); 2 only when the file itself is unusable."""
    assert _cli(tmp_path, '"transformer.layer.sequential_matmuls" = "6"') == 0
    assert _cli(tmp_path, '"transformer.layer.sequential_matmuls" = "7"') == 1
    capsys.readouterr()
    # an answer that does not parse is a row; the rest of the file is checked
    assert _cli(tmp_path, '"transformer.layer.sequential_matmuls" = "os.system"\n'
                          '"transformer.layer.mlp.sequential_matmuls" = "2"') == 1
    out = capsys.readouterr().out
    assert "unparsed" in out and "position 1" in out and "correct" in out
    assert _cli(tmp_path, '"transformer.forward.flops" = "O(LTD^2 + LT^2D)"') == 1
    assert _cli(tmp_path, '"transformer.forward.flops" = ""') == 1
    assert _cli(tmp_path, '"no.such.id" = "6"\n"transformer.layer.sequential_matmuls" = "6"') == 1
    capsys.readouterr()
    # a file none of whose ids is a question is unusable
    assert _cli(tmp_path, '"no.such.id" = "6"') == 2
    assert main(["check-answers", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "no.such.id" in err and len(err.strip().splitlines()) == 2


def test_cli_json_and_out_files(tmp_path, capsys):
    out = tmp_path / "res" / "check.csv"
    code = _cli(tmp_path, 'transformer.layer.sequential_matmuls = "6"\n'
                          'transformer.forward.sequential_matmuls = "7L"',
                "--format", "json", "--out", str(out))
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {"id", "answer", "verdict", "derived", "counterexample"} <= set(rows[0])
    assert [r["verdict"] for r in rows] == ["correct", "incorrect"]
    assert out.exists() and out.with_suffix(".md").read_text().count("| `transformer.") == 2


def test_cli_list_shows_ids_and_symbols(capsys):
    assert main(["check-answers", "--list", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert "rnn.train.sequential_matmuls" in text and "J = D/H" in text


def test_homework_file_checks_and_every_counterexample_is_confirmed_by_measurement():
    """Every shipped question derives and measures consistently; each incorrect verdict
    carries a point where the answer differs from both derivation and measurement."""
    frame = checker.check_file(HOMEWORK_ANSWERS, TINY)
    assert set(frame["verdict"]) <= {"correct", "incorrect"}
    for row in frame.itertuples():
        if row.verdict == "correct":
            assert row.counterexample is None
        elif row.id.startswith("gru."):  # numeric checks on the 2-D cell: what failed, measured
            assert row.counterexample["measured"] and row.counterexample["answered"] == row.answer
        else:
            ce = row.counterexample
            assert ce["answered"] != ce["derived"] == ce["measured"]
