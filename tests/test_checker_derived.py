"""Questions whose reference is derived from counts (kind = "derived", analysis.derive),
checked by the answer checker: a course's own questions file, about a built-in model or its
own model factory."""

import textwrap

import pytest

from analysis.checker import DERIVATIONS, DerivationMismatch, check_answers, check_file
from analysis.questions import load_questions
from analysis.verdicts import Verdict
from charlm.cli import main

QUESTIONS = '''
[questions."tf.forward"]
section = "course, question 1"
question = "FLOPs of one forward pass, head included?"
kind = "derived"
model = "transformer"
phase = "forward"
derive = { vary = ["T", "D", "L", "V"] }

[questions."tf.body"]
section = "course, question 2"
question = "FLOPs of the forward without the vocabulary projection?"
kind = "derived"
model = "transformer"
phase = "forward"
terms = ["qkv", "scores+weighted_values+attention", "out_proj", "mlp"]
derive = { vary = ["T", "D", "L"] }
lower_order_ok = false

[questions."mine.forward"]
section = "course, question 3"
question = "FLOPs of our model's forward?"
kind = "derived"
model = "ours.py:model"
phase = "forward"
derive = { vary = ["T", "D"] }
'''

# Our model: an (T, D) input through Linear(D, 3D) and Linear(3D, D), then x @ x^T (T x T).
# By hand: 2*T*D*3D + 2*T*3D*D + 2*T*T*D = 12 T D^2 + 2 T^2 D.
OURS = '''
import torch
from torch import nn


class Ours(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.up = nn.Linear(d, 3 * d, bias=False)
        self.down = nn.Linear(3 * d, d, bias=False)

    def forward(self, x):
        y = self.down(self.up(x))
        return y @ y.transpose(-1, -2)


def model(T=8, D=4):
    return Ours(D), torch.randn(T, D)
'''


@pytest.fixture
def course(tmp_path):
    (tmp_path / "questions.toml").write_text(QUESTIONS)
    (tmp_path / "ours.py").write_text(OURS)
    return tmp_path


def _answers(tmp_path, answers: dict) -> str:
    path = tmp_path / "answers.toml"
    path.write_text("".join(f'"{k}" = "{v}"\n' for k, v in answers.items()))
    return str(path)


def test_derived_references_grade_answers_with_counterexamples(course):
    questions = load_questions(course / "questions.toml", kinds=DERIVATIONS)
    frame = check_answers({
        # nanoGPT's forward by hand, head included (B = 1): qkv 6, out 2, MLP 16 per LTD^2,
        # scores and values 2 + 2 LT^2D, head 2TDV
        "tf.forward": "24 L T D^2 + 4 L T^2 D + 2 T D V",
        # the causal half of the attention square: wrong for the full square the kernel runs
        "tf.body": "24 L T D^2 + 2 L T^2 D",
        "mine.forward": "12 T D^2 + 2 T^2 D",
    }, questions=questions).set_index("id")
    assert frame.loc["tf.forward", "verdict"] == Verdict.CORRECT
    assert frame.loc["mine.forward", "verdict"] == Verdict.CORRECT
    body = frame.loc["tf.body"]
    assert body["verdict"] == Verdict.INCORRECT
    ce = body["counterexample"]
    t, d, layers = ce["sizes"]["T"], ce["sizes"]["D"], ce["sizes"]["L"]
    assert ce["answered"] == 24 * layers * t * d * d + 2 * layers * t * t * d
    assert ce["derived"] == ce["measured"] == 24 * layers * t * d * d + 4 * layers * t * t * d
    assert "derived - answer = 2*D*L*T^2" in body["reasoning"]
    assert "verified exactly at 4 held-out sizes" in body["reasoning"]
    assert "V = 65" in body["reasoning"]  # the sizes the derivation held are named


def test_a_held_size_in_the_answer_is_the_value_it_was_held_at(course):
    questions = load_questions(course / "questions.toml", kinds=DERIVATIONS)
    # V is held at 65 in tf.body's derivation; B at 1: an answer in B equals it with B = 1
    frame = check_answers({"tf.body": "B (24 L T D^2 + 4 L T^2 D)"}, questions=questions)
    assert frame.loc[0, "verdict"] == Verdict.CORRECT


def test_a_reference_that_does_not_verify_is_a_toolkit_error_not_a_verdict(tmp_path):
    (tmp_path / "branchy.py").write_text(textwrap.dedent('''
        import torch
        from torch import nn

        class Branchy(nn.Module):
            def __init__(self, d, t):
                super().__init__()
                self.a = nn.Linear(d, d, bias=False)
                self.extra = t > 6  # a size-dependent code path

            def forward(self, x):
                x = self.a(x)
                return self.a(x) if self.extra else x

        def model(T=4, D=4):
            return Branchy(D, T), torch.randn(T, D)
    '''))
    (tmp_path / "q.toml").write_text(textwrap.dedent('''
        [questions."b"]
        section = "s"
        question = "q"
        kind = "derived"
        model = "branchy.py:model"
        derive = { vary = ["T", "D"] }
    '''))
    questions = load_questions(tmp_path / "q.toml", kinds=DERIVATIONS)
    with pytest.raises(DerivationMismatch, match="did not verify"):
        check_answers({"b": "2 T D^2"}, questions=questions)


@pytest.mark.parametrize("table,message", [
    ('{ vary = "T" }', "derive.vary must be a list"),
    ("{ vary = [] }", "derive.vary must list"),
    ('{ vary = ["T"], fix = { V = 0 } }', "derive.fix.V must be a positive integer"),
    ('{ vary = ["T"], size = 3 }', "derive has no key 'size'"),
])
def test_a_bad_derive_table_names_the_question(tmp_path, table, message):
    (tmp_path / "q.toml").write_text(
        f'[questions."x"]\nsection = "s"\nquestion = "q"\nkind = "derived"\n'
        f'model = "gru"\nderive = {table}\n')
    with pytest.raises(ValueError, match=f"question x: {message}"):
        load_questions(tmp_path / "q.toml", kinds=DERIVATIONS)


def test_an_unknown_term_is_refused_with_the_terms_there_are(tmp_path):
    (tmp_path / "q.toml").write_text(
        '[questions."x"]\nsection = "s"\nquestion = "q"\nkind = "derived"\nmodel = "gru"\n'
        'phase = "forward"\nterms = ["attention"]\nderive = { vary = ["T"] }\n')
    questions = load_questions(tmp_path / "q.toml", kinds=DERIVATIONS)
    with pytest.raises(ValueError, match="no derived term 'attention'; the terms: "):
        check_answers({"x": "T"}, questions=questions)


def test_cli_takes_a_course_questions_file(course, capsys):
    answers = _answers(course, {"mine.forward": "12 T D^2 + 2 T^2 D"})
    assert main(["check-answers", answers, "--questions", str(course / "questions.toml")]) == 0
    assert "mine.forward  correct" in capsys.readouterr().out
    wrong = _answers(course, {"mine.forward": "12 T D^2"})
    assert main(["check-answers", wrong, "--questions", str(course / "questions.toml")]) == 1
    assert main(["check-answers", wrong, "--questions", str(course / "none.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    missing = course / "none.toml"
    assert err[-1] == f"charlm check-answers: error: --questions {missing}: no such file"


def test_check_file_reads_the_homework_questions_by_default(course):
    # a derived question id is unknown to the homework's own questions
    answers = _answers(course, {"tf.forward": "T"})
    with pytest.raises(ValueError, match="unknown question id 'tf.forward'"):
        check_file(answers)
