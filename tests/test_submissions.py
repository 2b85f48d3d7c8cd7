"""Reading answers out of what students hand in (`analysis.submissions`).

tests/data/homework_seed.txt is a verbatim copy of the homework notebook exported as text
(the project's seed, sha256 a3f4b407...18c2). Every expected answer below is transcribed by
hand from the file it is read from (the seed's lines are quoted beside them); the answers'
meanings are the homework's own answers file, written out here and checked against it.
"""

import hashlib
import html
import re
import time
from pathlib import Path

import nbformat
import pytest
import sympy as sp
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from analysis import gru_exercises
from analysis.expr_parser import parse_answer
from analysis.questions import HOMEWORK_ANSWERS, QUESTIONS_FILE, load_answers, load_questions
from analysis.submissions import (
    MAX_BLOCK_CHARS,
    MAX_CELL_CHARS,
    extract_answers,
    html_text,
    load_template,
    read_settings,
    read_submission,
    spans,
)

SEED = Path(__file__).parent / "data" / "homework_seed.txt"

# The seed's answers, raw as the seed writes them, delimiters ($, **) taken off.
SEED_RAW = {
    # "... requires a total of $(4TLD^2)$ FLOPs."
    "rnn.generate.flops": "(4TLD^2)",
    # "... so the total is $(8TLD^2)$ FLOPs."
    "rnn.train.flops": "(8TLD^2)",
    # "... So over all L layers and T tokens we need **TL** sequential matrix multiplications."
    "rnn.generate.sequential_matmuls": "TL",
    # "... we need **2TL** sequential matrix multiplications."
    "rnn.train.sequential_matmuls": "2TL",
    # "For a single layer, the MLP is: $(16TD^2)$ FLOPs."
    "transformer.layer.mlp.flops": "(16TD^2)",
    # "$(6JTD)$ FLOPs for each head and $(6TD^2)$ FLOPs for all heads together."
    "transformer.layer.qkv_per_head.flops": "(6JTD)",
    "transformer.layer.qkv.flops": "(6TD^2)",
    # "computing the attention matrix is: $(2T^2J)$ FLOPs for each head and $(2T^2D)$ ..."
    "transformer.layer.scores_per_head.flops": "(2T^2J)",
    "transformer.layer.scores.flops": "(2T^2D)",
    # "processing all the values through attention is: $(2T^2J)$ ... and $(2T^2D)$ ..."
    "transformer.layer.values_per_head.flops": "(2T^2J)",
    "transformer.layer.values.flops": "(2T^2D)",
    # "After concatenating all head results, the final projection is $(2TD^2)$ FLOPs"
    "transformer.layer.out_proj.flops": "(2TD^2)",
    # "... a single layer of attention is $(8TD^2 + 4T^2D)$ FLOPs"
    "transformer.layer.attention.flops": "(8TD^2 + 4T^2D)",
    # "... the cost to generate T tokens is $(24LTD^2 +$" / blank line / "$4LT^2D$) FLOPS"
    "transformer.generate.flops": "(24LTD^2 + 4LT^2D)",
    # "A single forward pass requires $(24LTD^2 + 4LT^2D)$ FLOPS and the backward pass
    #  requires $(48LTD^2 + 8LT^2D)$ FLOPS."
    "transformer.forward.flops": "(24LTD^2 + 4LT^2D)",
    "transformer.backward.flops": "(48LTD^2 + 8LT^2D)",
    # "For a single layer the MLP requires **2** sequential matrix multiplications."
    "transformer.layer.mlp.sequential_matmuls": "2",
    # "... the attention sub-layer requires **4** sequential matrix multiplications."
    "transformer.layer.attention.sequential_matmuls": "4",
    # "There the transformer requires **6** total sequential matrix multiplications per layer."
    "transformer.layer.sequential_matmuls": "6",
    # "Considering all layers all together, a forward pass requires **$6L$** sequential ..."
    "transformer.forward.sequential_matmuls": "6L",
    "transformer.generate.sequential_matmuls": "6L",
    # "... a backward pass in a transformer requires **$6L$** sequential matrix ..."
    "transformer.backward.sequential_matmuls": "6L",
    # GRU, read as slider settings: "set the weights $W_{hn}[0,0]$ to **-3.0**, while
    # keeping $W_{xn}[0,0]$ as its default (3.0)"
    "gru.exercise2.difference": "W_hn[0,0] = -3.0, W_xn[0,0] = 3.0",
    # "use the weight settings $W_{xz}[0,1]=W_{hz}[0,1]=3.0$."
    "gru.exercise3.memory": "W_xz[0,1] = W_hz[0,1] = 3.0",
    # "use the weight settings $W_{xr}[0,1]=W_{hr}[0,1]=-3.0$ or $W_{hn}[0,0] = 0.0$."
    "gru.exercise4.pure_input": "W_xr[0,1] = W_hr[0,1] = -3.0 or W_hn[0,0] = 0.0",
    # "$r[0]=z[0]=0.50$, **the final output became less dependent on the input, more on the
    #  previous hidden state.**"
    "gru.control.zero_input": "r[0]=z[0]=0.50",
    "gru.control.dependence": "the final output became less dependent on the input, more on "
                              "the previous hidden state.",
}

# What each answer means: the strings of analysis/data/homework_answers.toml.
expected_semantics = {
    "rnn.generate.flops": "4TLD^2",
    "rnn.train.flops": "8TLD^2",
    "rnn.generate.sequential_matmuls": "TL",
    "rnn.train.sequential_matmuls": "2TL",
    "transformer.layer.mlp.flops": "16TD^2",
    "transformer.layer.qkv.flops": "6TD^2",
    "transformer.layer.qkv_per_head.flops": "6JTD",
    "transformer.layer.scores.flops": "2T^2D",
    "transformer.layer.scores_per_head.flops": "2T^2J",
    "transformer.layer.values.flops": "2T^2D",
    "transformer.layer.values_per_head.flops": "2T^2J",
    "transformer.layer.out_proj.flops": "2TD^2",
    "transformer.layer.attention.flops": "8TD^2 + 4T^2D",
    "transformer.generate.flops": "24LTD^2 + 4LT^2D",
    "transformer.forward.flops": "24LTD^2 + 4LT^2D",
    "transformer.backward.flops": "48LTD^2 + 8LT^2D",
    "transformer.layer.mlp.sequential_matmuls": "2",
    "transformer.layer.attention.sequential_matmuls": "4",
    "transformer.layer.sequential_matmuls": "6",
    "transformer.forward.sequential_matmuls": "6L",
    "transformer.generate.sequential_matmuls": "6L",
    "transformer.backward.sequential_matmuls": "6L",
    "gru.exercise2.difference": "W_hn[0,0] = -3.0, W_xn[0,0] = 3.0",
    "gru.exercise3.memory": "W_xz[0,1] = W_hz[0,1] = 3.0",
    "gru.exercise4.pure_input": "W_xr[0,1] = W_hr[0,1] = -3.0 or W_hn[0,0] = 0.0",
    "gru.control.zero_input": "r[0] = z[0] = 0.50",
    "gru.control.dependence": "the final output became less dependent on the input, more on "
                              "the previous hidden state",
}
COST_IDS = [q for q in expected_semantics if not q.startswith("gru.")]
GRU_IDS = [q for q in expected_semantics if q.startswith("gru.")]


def _latex_parser_available() -> bool:
    try:
        parse_answer("$2TL$", "x")
    except ValueError:
        return False
    return True


latex_parser_available = _latex_parser_available()
needs_latex = pytest.mark.skipif(not latex_parser_available,
                                 reason="the LaTeX-aware answer parser has not landed")


def same_meaning(qid: str, answer: str, reference: str) -> bool:
    """Whether two answers say the same: the same polynomial for a cost question, the same
    settings / gate values / claims for a GRU one (each module's own parser)."""
    if qid.startswith("gru.control.zero"):
        return gru_exercises.parse_gates(answer) == gru_exercises.parse_gates(reference)
    if qid.startswith("gru.control.dep"):
        return (gru_exercises.parse_dependence(answer)
                == gru_exercises.parse_dependence(reference))
    if qid.startswith("gru."):
        return gru_exercises.parse_settings(answer) == gru_exercises.parse_settings(reference)
    return sp.expand(parse_answer(answer, qid) - parse_answer(reference, qid)) == 0


# ------------------------------------------------------------------------------ builders

_HEADING = re.compile(r"^(\d+(?:\.\d+)*) ([A-Z].{0,70})$")


def seed_notebook(text: str):
    """The seed as the notebook it was exported from: fenced blocks become code cells, the
    rest markdown cells split at the section headings, which become `#` headings without
    the numbers the export added."""
    cells, markdown, code, in_code = [], [], [], False

    def flush():
        body = "\n".join(markdown).strip("\n")
        if body.strip():
            cells.append(new_markdown_cell(body))
        markdown.clear()

    for line in text.split("\n"):
        if line.strip() == "```":
            if in_code:
                cells.append(new_code_cell("\n".join(code).strip("\n")))
                code.clear()
            else:
                flush()
            in_code = not in_code
        elif in_code:
            code.append(line)
        elif m := _HEADING.match(line):
            flush()
            markdown.append("#" * (m.group(1).count(".") + 1) + " " + m.group(2))
        else:
            markdown.append(line)
    flush()
    return new_notebook(cells=cells)


def markdown_export(nb) -> str:
    """The notebook as nbconvert's Markdown exporter writes it: markdown as is, code
    fenced."""
    return "\n\n".join(c.source if c.cell_type == "markdown" else f"```python\n{c.source}\n```"
                       for c in nb.cells)


def _inline_html(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text, flags=re.S)
    return re.sub(r"(?<![*\w])\*([^*\n]+?)\*", r"<em>\1</em>", text)


def html_export(nb) -> str:
    """The notebook as an nbconvert-like HTML page: a head with a style and a script,
    markdown rendered to <h>, <p>, <strong> and <em> (a script saying YOUR ANSWER after each
    paragraph), math left as $...$ text for MathJax, code in <pre>."""
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>HW3</title>",
           "<style>.jp-Cell { margin: 0 } /* YOUR ANSWER: $999$ */</style>",
           "<script>var note = 'YOUR ANSWER: **999**';</script></head><body>"]
    for cell in nb.cells:
        if cell.cell_type == "code":
            out.append(f"<div class='jp-CodeCell'><pre>{html.escape(cell.source)}</pre></div>")
            continue
        out.append("<div class='jp-MarkdownCell'><div class='jp-RenderedMarkdown'>")
        for para in re.split(r"\n\s*\n", cell.source):
            if m := re.match(r"(#+) (.*)", para):
                level = len(m.group(1))
                out.append(f"<h{level}>{_inline_html(m.group(2))}</h{level}>")
            else:  # a script after each paragraph, which must not be read
                out.append(f"<p>{_inline_html(para)}</p>"
                           "<script>/* YOUR ANSWER: $999$ */</script>")
        out.append("</div></div>")
    out.append("</body></html>")
    return "\n".join(out)


def pdf_bytes(paragraphs: list[str], width: int = 95, per_page: int = 60) -> bytes:
    """A PDF written by hand (Helvetica text, lines wrapped at `width` characters, a blank
    line between paragraphs), as a notebook printed to PDF reads to a text extractor."""
    lines = []
    for para in paragraphs:
        words, line = para.split(), ""
        for word in words:
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines += [line, ""]
    pages = [lines[i:i + per_page] for i in range(0, len(lines), per_page)]
    n_pages = len(pages)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + b" ".join(
                   f"{4 + 2 * i} 0 R".encode() for i in range(n_pages))
               + f"] /Count {n_pages} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i, page in enumerate(pages):
        ops = ["BT /F1 9 Tf 11 TL 40 800 Td"]
        for line in page:
            text = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({text}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream
                       + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed_ipynb(tmp_path_factory, seed_text) -> Path:
    path = tmp_path_factory.mktemp("seed") / "homework.ipynb"
    nbformat.write(seed_notebook(seed_text), path)
    return path


# ------------------------------------------------------------------------------ the seed


def test_seed_file_is_the_seed_and_the_semantics_are_the_homework_answers_file():
    assert hashlib.sha256(SEED.read_bytes()).hexdigest().startswith("a3f4b407d90aeeb4")
    homework = load_answers(HOMEWORK_ANSWERS)
    assert {q: homework[q] for q in expected_semantics} == expected_semantics
    wanted = [q for q in homework if q.startswith(("rnn.", "transformer."))]
    assert sorted(wanted) == sorted(COST_IDS) and len(COST_IDS) == 22


def test_seed_text_gives_every_cost_answer_as_the_seed_writes_it():
    sub = read_submission(SEED)
    assert sub.format == "txt" and sub.source == str(SEED)
    assert sub.answers == SEED_RAW
    assert sub.problems == []


def test_seed_answers_mean_the_homework_answers():
    # the seed's answers need no LaTeX: today's parser reads them
    sub = read_submission(SEED)
    for qid, reference in expected_semantics.items():
        assert same_meaning(qid, sub.answers[qid], reference), qid


def test_the_grader_sees_the_block_each_answer_came_from():
    sub = read_submission(SEED)
    assert sub.extracted["transformer.generate.flops"] == (
        "Adding up all layers the cost to generate T tokens is $(24LTD^2 +$\n\n$4LT^2D$) FLOPS")
    assert sub.spans["transformer.generate.flops"] == "$(24LTD^2 +$ $4LT^2D$)"
    # the block stops at the inline next question ("... = 3.0$. 2. Which gate ...")
    assert sub.extracted["gru.exercise3.memory"] == (
        "For perfect memory, use the weight settings $W_{xz}[0,1]=W_{hz}[0,1]=3.0$.")
    assert sub.extracted["rnn.train.sequential_matmuls"].endswith(
        "we need **2TL** sequential matrix multiplications.")
    assert sub.spans["transformer.backward.sequential_matmuls"] == "**$6L$**"
    # one block, two ids
    assert (sub.extracted["transformer.layer.qkv.flops"]
            == sub.extracted["transformer.layer.qkv_per_head.flops"])


def test_notebook_built_from_the_seed_gives_the_same_answers(seed_ipynb):
    nb = nbformat.read(seed_ipynb, as_version=4)
    # section headings as the notebook has them, without the export's numbers
    assert any(c.source.startswith("## Exercise 3: Perfect Memory\n") for c in nb.cells)
    assert not any("6.3 Exercise 3" in c.source for c in nb.cells)
    sub = read_submission(seed_ipynb)
    assert sub.format == "ipynb"
    assert sub.answers == SEED_RAW
    assert sub.problems == []


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_markdown_and_html_exports_give_the_same_answers(tmp_path, seed_ipynb, suffix):
    nb = nbformat.read(seed_ipynb, as_version=4)
    path = tmp_path / f"homework{suffix}"
    path.write_text(markdown_export(nb) if suffix == ".md" else html_export(nb),
                    encoding="utf-8")
    sub = read_submission(path)
    assert sub.answers == SEED_RAW
    assert sub.problems == []


def test_pdf_export_gives_the_same_answers(tmp_path, seed_text):
    # the seed's text outside code, from the RNN cost questions to the Transformer's last
    body = seed_text[seed_text.index("4 Computational Efficiency"):
                     seed_text.index("[31]: *# Now let's see")]
    body = re.sub(r"```.*?```", "", body, flags=re.S)
    paragraphs = [p for p in re.split(r"\n\s*\n", body.translate(
        str.maketrans("\u201c\u201d\u2019", "\"\"'"))) if p.strip()]
    paragraphs = [p.encode("latin-1", "replace").decode("latin-1") for p in paragraphs]
    path = tmp_path / "homework.pdf"
    path.write_bytes(pdf_bytes(paragraphs))
    start = time.perf_counter()
    sub = read_submission(path)
    assert time.perf_counter() - start < 5
    assert sub.format == "pdf"
    assert sub.answers == SEED_RAW
    assert sub.problems == []


def test_html_text_keeps_math_bold_and_paragraphs_and_drops_scripts():
    page = ("<html><head><title>YOUR ANSWER</title><style>p { x: 1 }</style></head><body>"
            "<p>cost <script type='math/tex'>4TLD^2</script> FLOPs, <b>TL</b> &lt; "
            "<strong>$2TL$</strong></p><script>var a = '$9$';</script><div>next<br>line</div>"
            "<script type='math/tex; mode=display'>x</script></body></html>")
    assert html_text(page) == "cost $4TLD^2$ FLOPs, **TL** < **$2TL$**\n\nnext\nline\n\n$$x$$"


def test_answers_toml_is_read_as_it_is():
    sub = read_submission(HOMEWORK_ANSWERS)
    assert sub.format == "toml" and sub.problems == []
    assert sub.answers == load_answers(HOMEWORK_ANSWERS) == sub.extracted


# ------------------------------------------------------------------------------ student 2

QUESTIONS = {  # the homework's question text as a notebook's markdown writes it
    "rnn": "# Computational Efficiency of the Classic RNN\n\nLet's analyze the efficiency of "
           "the RNN. For an Elman RNN with: - Hidden dimension $D$ - Sequence length $T$",
    "rnn1": "1. How many FLOPs are needed to generate $T$ tokens? (In this, and all the "
            "questions in this HW, you can ignore small calculations like biases.)",
    "rnn2": "2. How many FLOPs are needed to train on a sequence of $T$ tokens? (Not counting "
            "training the classifier layer $W_{ff}$.)",
    "rnn3": "3. Counting FLOPs can overestimate ... How many sequential matrix "
            "multiplications are needed to generate $T$ tokens?",
    "rnn4": "4. How many sequential matrix multiplications are needed to train on $T$ tokens?",
    "gru2": "## Exercise 2: Computing Differences\n\nQuestion: What weights did you use to "
            "achieve this?",
    "gru3": "## Exercise 3: Perfect Memory\n\nQuestions:\n1. What weight settings achieve "
            "this?",
    "gru4": "## Exercise 4: Pure Input Mode\n\nQuestions:\n1. What weight settings achieve "
            "this?",
    "gru5": "## Final Observation: Control Channel\n\nQuestions:\n1. What happens to the "
            "gating behavior?",
    "tf": "Now let's analyze the efficiency of our Transformer. With: - Model dimension $D$",
    "tf1": "1. How many FLOPs are needed to generate $T$ tokens? (You can ignore small "
           "calculations like biases.)",
    "tf2": "2. How many FLOPs are needed to train on a sequence of $T$ tokens?",
    "tf3": "3. How many sequential matrix multiplications are needed to generate $T$ tokens?",
    "tf4": "4. How many sequential matrix multiplications are needed to train on $T$ tokens, "
           "and how does this compare to the RNN?",
}

STUDENT2 = [  # (cell before, the answer cell)
    ("rnn", None), ("rnn1", "**YOUR ANSWER:**\n\nTwo $D \\times D$ matrix-vector products per "
                            "layer and token, so in total $4 \\cdot T \\cdot L \\cdot D^{2}$ "
                            "FLOPs."),
    ("rnn2", "YOUR ANSWER: The backward pass costs twice the forward pass, so training costs "
             "\\(12\\,T L D^{2}\\) FLOPs."),
    ("rnn3", "> YOUR ANSWER: one matmul per layer per step: $\\mathbf{T L}$"),
    ("rnn4", "YOUR ANSWER: **3TL**, since the backward pass goes back through time."),
    ("gru2", "> YOUR ANSWER: $W_{xn}[0,0] = 3$ and $W_{hn}[0,0] = -3$"),
    ("gru3", "> YOUR ANSWER: I set the update weights $W_{xz}[0,1]$ and $W_{hz}[0,1]$ to "
             "2.5.\n\n2. Which gate is primarily responsible for this behavior?\n\n"
             "> YOUR ANSWER: **Update gate**"),
    ("gru4", "> YOUR ANSWER: set $W_{hn}[0,0]$ to $0$"),
    ("gru5", "> YOUR ANSWER: Both gates sit at one half, $r[0] = z[0] = 0.5$; **the output now "
             "depends more on the hidden state and less on the input**."),
    ("tf", None),
    ("tf1", "YOUR ANSWER: For a single layer, the MLP is: $\\left(16 T D^{2}\\right)$ FLOPs."),
    (None, "YOUR ANSWER: For a single layer, computing the $K$, $Q$, and $V$ together is: "
           "$3 \\times 2TDJ$ FLOPs for each head and $6TD^{2}$ FLOPs for all heads together."),
    # does not say "attention matrix": read as the next block in order, with a problem
    (None, "YOUR ANSWER: For a single layer, the scores $QK^T$ cost: $2 T^{2} J$ FLOPs for "
           "each head and $2 \\times T^{2} \\times D$ FLOPs for all heads together."),
    (None, "YOUR ANSWER: For a single layer, processing all the values through attention is: "
           "$\\frac{2T^2D}{H}$ FLOPs for each head and $2T^2D$ FLOPs for all heads together."),
    (None, "YOUR ANSWER: After concatenating all head results, the final projection is"),
    (None, "YOUR ANSWER: Therefore the total flops for a single layer of attention is "
           "$8TD^2 + 2T^2D$ FLOPs (the mask halves the scores)"),
    (None, "YOUR ANSWER: Adding up all layers the cost to generate $T$ tokens is "
           "$L \\cdot (24TD^2 +\n4T^2D)$ FLOPS"),
    ("tf2", "YOUR ANSWER: A single forward pass requires $L\\left(24TD^{2} + "
            "4T^{2}D\\right)$ FLOPS and the backward pass requires about twice that: "
            "$48LTD^2 + 8LT^2D$ FLOPS."),
    # answered in another order than the template's: the mentions find them
    ("tf3", "YOUR ANSWER: There the transformer requires **5** total sequential matrix "
            "multiplications per layer."),
    (None, "YOUR ANSWER: For a single layer the MLP requires $2$ sequential matrix "
           "multiplications."),
    (None, "YOUR ANSWER: Considering all layers all together, a forward pass requires "
           "$\\mathbf{5L}$ sequential matrix multiplications."),
    (None, "YOUR ANSWER: For a single layer, ... the attention sub-layer requires **3** "
           "sequential matrix multiplications."),
    ("tf4", "YOUR ANSWER: Considering all layers all together, a backward pass in a "
            "transformer requires **$2 \\cdot 6L$** sequential matrix multiplications.\n\n"
            "YOUR ANSWER: This differs from the RNN, whose cost grows with $T$."),
]

STUDENT2_RAW = {  # hand transcription of STUDENT2's answers
    "rnn.generate.flops": "4 \\cdot T \\cdot L \\cdot D^{2}",
    "rnn.train.flops": "12\\,T L D^{2}",
    "rnn.generate.sequential_matmuls": "\\mathbf{T L}",
    "rnn.train.sequential_matmuls": "3TL",
    "gru.exercise2.difference": "W_xn[0,0] = 3, W_hn[0,0] = -3",
    "gru.exercise3.memory": "W_xz[0,1] = W_hz[0,1] = 2.5",
    "gru.exercise4.pure_input": "W_hn[0,0] = 0",
    "gru.control.zero_input": "r[0] = z[0] = 0.5",
    "gru.control.dependence": "the output now depends more on the hidden state and less on "
                              "the input",
    "transformer.layer.mlp.flops": "\\left(16 T D^{2}\\right)",
    "transformer.layer.qkv_per_head.flops": "3 \\times 2TDJ",
    "transformer.layer.qkv.flops": "6TD^{2}",
    "transformer.layer.scores_per_head.flops": "2 T^{2} J",
    "transformer.layer.scores.flops": "2 \\times T^{2} \\times D",
    "transformer.layer.values_per_head.flops": "\\frac{2T^2D}{H}",
    "transformer.layer.values.flops": "2T^2D",
    "transformer.layer.attention.flops": "8TD^2 + 2T^2D",
    "transformer.generate.flops": "L \\cdot (24TD^2 + 4T^2D)",
    "transformer.forward.flops": "L\\left(24TD^{2} + 4T^{2}D\\right)",
    "transformer.backward.flops": "48LTD^2 + 8LT^2D",
    "transformer.layer.mlp.sequential_matmuls": "2",
    "transformer.layer.attention.sequential_matmuls": "3",
    "transformer.layer.sequential_matmuls": "5",
    "transformer.forward.sequential_matmuls": "\\mathbf{5L}",
    "transformer.generate.sequential_matmuls": "\\mathbf{5L}",
    "transformer.backward.sequential_matmuls": "2 \\cdot 6L",
}

STUDENT2_SEMANTICS = {  # what each of STUDENT2's answers says, in plain notation
    "rnn.generate.flops": "4TLD^2",
    "rnn.train.flops": "12TLD^2",
    "rnn.generate.sequential_matmuls": "TL",
    "rnn.train.sequential_matmuls": "3TL",
    "gru.exercise2.difference": "W_hn[0,0] = -3.0, W_xn[0,0] = 3.0",
    "gru.exercise3.memory": "W_xz[0,1] = W_hz[0,1] = 2.5",
    "gru.exercise4.pure_input": "W_hn[0,0] = 0.0",
    "gru.control.zero_input": "r[0] = z[0] = 0.50",
    "gru.control.dependence": "less dependent on the input, more on the hidden state",
    "transformer.layer.mlp.flops": "16TD^2",
    "transformer.layer.qkv_per_head.flops": "6JTD",
    "transformer.layer.qkv.flops": "6TD^2",
    "transformer.layer.scores_per_head.flops": "2T^2J",
    "transformer.layer.scores.flops": "2T^2D",
    "transformer.layer.values_per_head.flops": "2T^2J",
    "transformer.layer.values.flops": "2T^2D",
    "transformer.layer.attention.flops": "8TD^2 + 2T^2D",
    "transformer.generate.flops": "24LTD^2 + 4LT^2D",
    "transformer.forward.flops": "24LTD^2 + 4LT^2D",
    "transformer.backward.flops": "48LTD^2 + 8LT^2D",
    "transformer.layer.mlp.sequential_matmuls": "2",
    "transformer.layer.attention.sequential_matmuls": "3",
    "transformer.layer.sequential_matmuls": "5",
    "transformer.forward.sequential_matmuls": "5L",
    "transformer.generate.sequential_matmuls": "5L",
    "transformer.backward.sequential_matmuls": "12L",
}


@pytest.fixture(scope="module")
def student2(tmp_path_factory) -> Path:
    cells = []
    for question, answer in STUDENT2:
        if question:
            cells.append(new_markdown_cell(QUESTIONS[question]))
            cells.append(new_code_cell("# some code the student ran"))
        if answer:
            cells.append(new_markdown_cell(answer))
    path = tmp_path_factory.mktemp("student2") / "student2.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_second_student_notebook_gives_its_hand_transcription(student2):
    sub = read_submission(student2)
    assert sub.answers == STUDENT2_RAW
    # the out-projection's sentence was left without its number: prose is not an answer
    assert sub.problems == [
        "transformer.layer.scores_per_head.flops, transformer.layer.scores.flops: no answer "
        "after 'How many FLOPs are needed to generate T tokens?' mentions 'attention matrix'; "
        "read the next one",
        "transformer.layer.out_proj.flops: no math ($...$) or bold (**...**) span in the "
        "answer"]
    assert sub.extracted["transformer.layer.out_proj.flops"] == (
        "After concatenating all head results, the final projection is")


def test_second_student_gru_answers_mean_what_they_say(student2):
    sub = read_submission(student2)
    for qid in GRU_IDS:
        assert same_meaning(qid, sub.answers[qid], STUDENT2_SEMANTICS[qid]), qid


@needs_latex
def test_second_student_latex_answers_mean_their_plain_transcription(student2):
    sub = read_submission(student2)
    for qid, meaning in STUDENT2_SEMANTICS.items():
        if not qid.startswith("gru."):
            assert same_meaning(qid, sub.answers[qid], meaning), qid


@needs_latex
def test_seed_answers_with_their_delimiters_mean_the_homework_answers():
    sub = read_submission(SEED)
    for qid in COST_IDS:
        assert same_meaning(qid, sub.spans[qid], expected_semantics[qid]), qid


# ------------------------------------------------------------------------------ rules


def test_template_reads_question_ids_of_the_bank_and_says_which_it_cannot():
    template = load_template()
    bank = [*load_questions(QUESTIONS_FILE), *(q["id"] for q in gru_exercises.questions())]
    assert set(template.ids) <= set(bank)
    assert set(template.ids) >= set(COST_IDS)
    gru = {q for q in bank if q.startswith("gru.")}
    assert set(template.ids) | set(template.not_read) >= gru
    assert list(template.not_read) == ["gru.exercise1.sum"]


def test_split_expression_joins_only_over_white_space():
    text = "is $(24LTD^2 +$\n\n$4LT^2D$) FLOPS"
    (span,), _ = spans(text)
    assert span.content == "(24LTD^2 + 4LT^2D)" and text[span.end:] == " FLOPS"
    # an operator at the end joins too; words between spans keep them apart
    joined, _ = spans("$8TD^2 \\cdot$\n$L$")
    assert [s.content for s in joined] == ["8TD^2 \\cdot L"]
    apart, _ = spans("$2 \\times$ as many, $L(48TD^2)$")
    assert [s.content for s in apart] == ["2 \\times", "L(48TD^2)"]
    closed, _ = spans("$(6TD^2)$ and $(2TD^2)$")
    assert [s.content for s in closed] == ["(6TD^2)", "(2TD^2)"]


def test_first_opener_wins_and_unclosed_delimiters_are_text():
    found, unclosed = spans("**$6L$** and $a**2$ and \\(x\\) and \\$5 and $y")
    assert [(s.kind, s.content) for s in found] == [("bold", "$6L$"), ("math", "a**2"),
                                                    ("math", "x")]
    assert unclosed


def test_paragraph_open_at_its_end_runs_on_into_the_next():
    text = ("the question? YOUR ANSWER: it costs $(24LTD^2 +$\n\n$4LT^2D$) FLOPs\n\n"
            "Next paragraph $9$.")
    sub = extract_answers(text, _one_block_template({"x": -1}))
    assert sub.answers == {"x": "(24LTD^2 + 4LT^2D)"}
    closed = "the question? YOUR ANSWER: it costs $(24LTD^2)$\n\nNext paragraph $9$."
    assert extract_answers(closed, _one_block_template({"x": -1})).answers == {
        "x": "(24LTD^2)"}


def test_blockquoted_answer_reads_like_a_plain_one():
    text = ("the question?\n\n> YOUR ANSWER: it is $(24LTD^2 +$\n>\n> $4LT^2D$) FLOPs\n>\n"
            "> and more, $9$")
    sub = extract_answers(text, _one_block_template({"x": -1}))
    assert sub.answers == {"x": "(24LTD^2 + 4LT^2D)"}


def test_answer_without_spans_is_read_whole_only_when_it_is_a_bare_expression():
    bare = extract_answers("the question? YOUR ANSWER: 4TLD^2 FLOPs.",
                           _one_block_template({"x": -1}))
    assert bare.answers == {"x": "4TLD^2 FLOPs"}
    assert bare.problems == ["x: no math ($...$) or bold (**...**) span in the answer; read "
                             "all of it"]
    prose = extract_answers("the question? YOUR ANSWER: quadratic in T",
                            _one_block_template({"x": -1}))
    assert prose.answers == {}
    assert prose.problems == ["x: no math ($...$) or bold (**...**) span in the answer"]


def _one_block_template(ids, after="the question?"):
    from analysis.submissions import Template, _block
    return Template("YOUR ANSWER", (_block({"after": after, "ids": ids}, "test"),), {}, "test")


def test_span_picked_by_phrase_falls_back_to_position():
    ids = {"head": {"before": "each head", "span": 1}, "all": {"before": "all heads"}}
    said = "the question? YOUR ANSWER: with $J = D/H$: $6JTD$ for each head, $6TD^2$ for all heads"
    assert extract_answers(said, _one_block_template(ids)).answers == {
        "head": "6JTD", "all": "6TD^2"}
    unsaid = "the question? YOUR ANSWER: $6JTD$ per head, $6TD^2$ in all"
    sub = extract_answers(unsaid, _one_block_template(ids))
    assert sub.answers == {"head": "6JTD"}
    assert sub.problems == ["all: no span before 'all heads' in the answer"]


def test_settings_are_read_from_prose():
    assert read_settings("set the weights $W_{hn}[0,0]$ to **-3.0**, while keeping "
                         "$W_{xn}[0,0]$ as its default (3.0)") == (
        "W_hn[0,0] = -3.0, W_xn[0,0] = 3.0")
    assert read_settings("W_xr[0,1] and W_hr[0,1] at \u22123, or h[0] = 1") == (
        "W_xr[0,1] = W_hr[0,1] = -3 or h[0] = 1")
    assert read_settings("the update gate, mostly") == ""


def test_missing_question_text_and_missing_blocks_are_problems_not_errors():
    sub = extract_answers("Nothing here but a YOUR ANSWER: $1$ for no question.")
    assert sub.answers == {}
    assert sub.problems[0] == ("rnn.generate.flops: question text 'How many FLOPs are needed "
                               "to generate T tokens?' not found")
    assert extract_answers("no marker at all").problems == [
        "no 'YOUR ANSWER' in the file: no answer was read"]


# ------------------------------------------------------------------------------ bad input


def test_unusable_files_are_one_line_value_errors(tmp_path):
    cases = {
        tmp_path / "missing.ipynb": "no such file",
        tmp_path: "is a folder",
        tmp_path / "answers.docx": "cannot read a .docx file",
        tmp_path / "garbage.ipynb": "not a Jupyter notebook",
        tmp_path / "list.ipynb": "not a Jupyter notebook",
        tmp_path / "latin1.md": "not a UTF-8 text file",
        tmp_path / "broken.pdf": "not a readable PDF",
    }
    (tmp_path / "answers.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / "garbage.ipynb").write_text("{ not json")
    (tmp_path / "list.ipynb").write_text("[1, 2, 3]")
    (tmp_path / "latin1.md").write_bytes("YOUR ANSWER: caf\xe9".encode("latin-1"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF body")
    for path, message in cases.items():
        with pytest.raises(ValueError) as err:
            read_submission(path)
        assert message in str(err.value) and "\n" not in str(err.value), path
        assert str(err.value).startswith(str(path))


def test_too_big_file_is_refused(tmp_path, monkeypatch):
    import analysis.submissions as submissions
    monkeypatch.setattr(submissions, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.md"
    path.write_text("x" * 1001)
    with pytest.raises(ValueError, match="1,001 bytes, more than the 1,000"):
        read_submission(path)


def test_megabyte_cell_is_cut_with_a_problem_and_the_rest_is_read(tmp_path, seed_text):
    nb = seed_notebook(seed_text)
    # a 1 MB cell of openers and markers, which a careless scanner would take quadratic time on
    unit = "YOUR ANSWER: $(" + "**\\(" * 20 + " "
    hostile = unit * (2**20 // len(unit) + 1)
    # in the region of the RNN's last question, after its answer
    at = next(i for i, c in enumerate(nb.cells) if "**2TL**" in c.source) + 1
    nb.cells.insert(at, new_markdown_cell(hostile))
    path = tmp_path / "hostile.ipynb"
    nbformat.write(nb, path)
    start = time.perf_counter()
    sub = read_submission(path)
    assert time.perf_counter() - start < 5
    assert sub.answers == SEED_RAW
    assert len(hostile) > 2**20
    assert sub.problems[0] == (f"cell {at + 1} is {len(hostile):,} characters; read the "
                               f"first {MAX_CELL_CHARS:,}")
    assert re.fullmatch(r"rnn.train.sequential_matmuls: \d+ answer blocks; read the first 50",
                        sub.problems[1])
    assert len(sub.problems) == 2


@pytest.mark.parametrize("unit", ["$($ ", "$a +$\n", "**$(**", "\\(x\\) $(", "YOUR ANSWER: $("])
def test_hostile_markup_is_read_in_linear_time(tmp_path, unit):
    piece = unit * (2**20 // len(unit))  # 1 MB
    start = time.perf_counter()
    spans(piece[:2**18])  # the scanner alone (a block is at most MAX_BLOCK_CHARS)
    path = tmp_path / "hostile.md"
    path.write_text("How many FLOPs are needed to generate T tokens? YOUR ANSWER: " + piece * 2)
    sub = read_submission(path)
    assert time.perf_counter() - start < 3
    assert sub.problems  # most questions are not in the file


def test_long_answer_block_is_cut_and_said():
    text = "the question? YOUR ANSWER: " + "word " * 2000 + "$4TLD^2$"
    sub = extract_answers(text, _one_block_template({"x": -1}))
    assert len(sub.extracted["x"]) == MAX_BLOCK_CHARS
    assert "longer than 4,000 characters" in sub.problems[0]


def test_nothing_in_a_submission_is_evaluated(tmp_path):
    # text that would do something if anything evaluated it comes back as text
    text = ("the question? YOUR ANSWER: $__import__('os').system('touch pwned')$ "
            "and **\\input{/etc/passwd}**")
    sub = extract_answers(text, _one_block_template({"x": 1, "y": 2}))
    assert sub.answers == {"x": "__import__('os').system('touch pwned')",
                           "y": "\\input{/etc/passwd}"}
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


@pytest.mark.parametrize("spec, message", [
    ({"after": "q", "ids": {"x": 0}}, "span must be a non-zero integer"),
    ({"after": "q", "ids": {"x": {"before": "a", "after": "b"}}}, "only one of them"),
    ({"after": "q", "ids": []}, "ids must list question ids"),
    ({"after": "q", "ids": ["x"], "read": "eval"}, "read must be one of span, settings"),
    ({"after": "q", "ids": ["x"], "where": "q"}, "a block has the keys"),
])
def test_malformed_template_blocks_are_named(spec, message):
    from analysis.submissions import _block
    with pytest.raises(ValueError, match=re.escape(message)):
        _block(spec, "block 1")


def test_the_docs_example_template_reads_a_course_notebook(tmp_path):
    docs = (Path(__file__).parent.parent / "docs" / "checking-answers.md").read_text()
    example = docs[docs.index("A course with its own notebook"):]
    start = example.index("```toml\n") + len("```toml\n")
    toml = example[start:example.index("\n```", start)]
    (tmp_path / "ours.toml").write_text(toml)
    nb = new_notebook(cells=[
        new_markdown_cell("# Our model\n\n1. How many FLOPs does one forward pass take?"),
        new_markdown_cell("YOUR ANSWER: about $2 \\cdot 12 L D^{2}$ per token")])
    nbformat.write(nb, tmp_path / "ours.ipynb")
    sub = read_submission(tmp_path / "ours.ipynb", load_template(tmp_path / "ours.toml"))
    assert sub.answers == {"ours.forward": "2 \\cdot 12 L D^{2}"} and sub.problems == []


# ------------------------------------------------------------------------------ verdicts


def _verdicts(path, ids=None) -> dict:
    from analysis.checker import QUICK_GRID, check_file

    frame = check_file(path, QUICK_GRID)
    rows = dict(zip(frame["id"], frame["verdict"].map(str)))
    return {k: v for k, v in rows.items() if ids is None or k in ids}


COST_IDS = [k for k in load_answers(HOMEWORK_ANSWERS) if k.startswith(("rnn.", "transformer."))]


@pytest.fixture(scope="module")
def homework_verdicts():
    return _verdicts(HOMEWORK_ANSWERS, COST_IDS)


def test_the_seed_and_its_notebook_get_the_homework_files_verdicts(seed_ipynb,
                                                                   homework_verdicts):
    # the Done-when: every cost question of the seed's text, and of an .ipynb built from it,
    # gets the verdict analysis/data/homework_answers.toml gets (its hand transcription)
    assert len(homework_verdicts) == 22
    assert _verdicts(SEED, COST_IDS) == homework_verdicts
    assert _verdicts(seed_ipynb, COST_IDS) == homework_verdicts


def test_a_second_students_notebook_gets_its_transcriptions_verdicts(student2, tmp_path):
    transcription = tmp_path / "student2.toml"
    transcription.write_text("".join(f'"{k}" = "{v}"\n' for k, v in STUDENT2_SEMANTICS.items()
                                     if not k.startswith("gru.")))
    want = _verdicts(transcription)
    got = _verdicts(student2, set(want))
    assert got == want
    # what the reading could not find is a row, never a crash: the unanswered out-projection
    assert _verdicts(student2)["transformer.layer.out_proj.flops"] == "missing"
