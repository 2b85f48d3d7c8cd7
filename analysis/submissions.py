"""Read a student's answers from what they hand in: an answers TOML, the homework notebook
(`.ipynb`), or the notebook's export (`.md`, `.txt`, `.html`, `.pdf`).

`read_submission(path)` returns a `Submission`: for each question id the answer text as
written (LaTeX kept, delimiters removed: `(4TLD^2)`, `4 \\cdot T \\cdot L \\cdot D^{2}`), to be
parsed later by the checker's parser, and the answer block it came from, which a grader sees
beside the verdict. Nothing read here is evaluated: text is matched with regular expressions
(each linear in the text: literal phrases, bounded repeats, no nested quantifiers) and sliced.

Where the answers are is data, the homework's answer template
(`analysis/data/homework_template.toml`, `load_template`):

- A notebook's text is its markdown cells' sources in order (code cells and outputs are not
  read); an export's is its text (HTML through the standard library's parser, with
  `<strong>` written back as `**`, `<script type="math/tex">` as `$...$`; a PDF through pypdf
  in layout mode, which keeps paragraph breaks as blank lines).
- An answer block starts after the template's marker (`YOUR ANSWER:`) and runs to the end of
  its paragraph (a blank line), the next marker, a line that starts a numbered question
  (`2. How many ...?`), a Markdown heading or code fence, or an inline numbered question
  (`... = 3.0$. 2. Which gate ...`), whichever comes first. An answer that starts on the
  line after the marker is read from there.
- The template lists the blocks in document order. A block is found after its question
  text (`after`: one phrase, or several searched one after the other, matched with case,
  white space, `$`, `*` and the space before punctuation ignored), as the first unused
  block before the next question's text; `mentions` prefers a block of that question which
  mentions a phrase (answers reordered inside a question still land on their ids).
- A block holds one or more ids, each reading one span: math (`$...$`, `$$...$$`, `\\(...\\)`,
  `\\[...\\]`) or bold (`**...**`), counted in order. An id's span (`Pick`) is a position
  (1 the first, -1, the default, the last), or the last span before a phrase of the block
  (`before = "each head"`), or the first after one (`after = "backward"`), falling back to a
  position when the block does not say the phrase. A bold span around math (`**$6L$**`) is
  one span, read as `6L`.
- Split expressions: two math spans are one expression when the first leaves a parenthesis
  open or ends in an operator (`+ - * = \\cdot \\times`) and only white space, line breaks
  and blank lines included, separates them; closing parentheses written right after a span
  that leaves one open, outside the math, close it (`$(24LTD^2 +$` / `$4LT^2D$) FLOPS` reads
  `(24LTD^2 + 4LT^2D)`). A paragraph that ends inside such an expression continues into the
  next one (at most MAX_CONTINUED more).
- `read = "settings"` (the GRU exercises) reads slider settings out of prose instead:
  `set $W_{hn}[0,0]$ to **-3.0**, while keeping $W_{xn}[0,0]$ as its default (3.0)` ->
  `W_hn[0,0] = -3.0, W_xn[0,0] = 3.0`, the notation `analysis.gru_exercises` parses.

White space inside an answer is collapsed to single spaces. Limits: a file of at most
MAX_FILE_BYTES, MAX_TEXT_CHARS of text, MAX_CELL_CHARS per markdown cell, MAX_BLOCK_CHARS per
answer block, MAX_PDF_PAGES pages; beyond them the text is cut and a problem says so (a
file over MAX_FILE_BYTES is refused).
"""

from __future__ import annotations

import bisect
import re
import sys
import warnings
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from analysis.questions import DATA, load_answers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TEMPLATE_FILE = DATA / "homework_template.toml"
FORMATS = {".toml": "toml", ".ipynb": "ipynb", ".md": "md", ".markdown": "md", ".txt": "txt",
           ".html": "html", ".htm": "html", ".pdf": "pdf"}
MAX_FILE_BYTES = 50 * 2**20  # a notebook with its plots' outputs is a few MB
MAX_TEXT_CHARS = 2_000_000  # the homework's whole text is 72,000 characters
MAX_CELL_CHARS = 100_000  # per markdown cell
MAX_BLOCK_CHARS = 4_000  # per answer block, as read and as shown
MAX_BLOCKS = 50  # answer blocks read per question
MAX_PDF_PAGES = 300
MAX_CONTINUED = 2  # paragraphs an open expression may run on into


@dataclass(frozen=True)
class Submission:
    """What was read from one file. `answers`: question id -> answer text (raw, LaTeX kept,
    delimiters removed); `extracted`: id -> the answer block it came from; `spans`: id ->
    the span as written, delimiters kept; `problems`: one line per thing not found or cut.
    For an answers TOML all three maps hold the file's strings."""

    source: str  # the path as given
    format: str  # toml | ipynb | md | txt | html | pdf | text
    answers: dict[str, str]
    extracted: dict[str, str]
    spans: dict[str, str]
    problems: list[str]


# ------------------------------------------------------------------------------ template

READS = ("span", "settings")
BLOCK_KEYS = {"after", "mentions", "ids", "read", "note"}


@dataclass(frozen=True)
class Pick:
    """Which span of a block answers one id: the first span after the phrase `after`, or
    the last one before the phrase `before` (first occurrences in the block), else the span
    at position `span` (1 the first, -1 the last)."""

    span: int | None = -1
    before: str = ""
    after: str = ""


PICK_KEYS = {"span", "before", "after"}


@dataclass(frozen=True)
class Block:
    ids: dict[str, Pick]  # question id -> which of the block's spans answers it
    after: tuple[str, ...]  # question text, empty: the same question as the block before
    mentions: str = ""
    read: str = "span"


@dataclass(frozen=True)
class Template:
    marker: str
    blocks: tuple[Block, ...]
    not_read: dict[str, str]  # id -> why the template cannot read it
    source: str

    @property
    def ids(self) -> list[str]:
        return [qid for b in self.blocks for qid in b.ids]


def load_template(path: str | Path = TEMPLATE_FILE) -> Template:
    """The answer template of `path`; ValueError naming the block for a malformed one."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not a readable template ({exc})") from None
    marker = raw.get("marker")
    if not isinstance(marker, str) or not marker.strip():
        raise ValueError(f"{path}: marker must be the phrase that opens an answer")
    blocks, seen = [], set()
    for n, spec in enumerate(raw.get("block", []), 1):
        blocks.append(_block(spec, f"{path}: block {n}"))
        for qid in blocks[-1].ids:
            if qid in seen:
                raise ValueError(f"{path}: block {n}: {qid} is read by an earlier block too")
            seen.add(qid)
    if not blocks or not blocks[0].after:
        raise ValueError(f"{path}: the first block must say after which question it comes")
    not_read = raw.get("not_read", {})
    if not all(isinstance(v, str) for v in not_read.values()):
        raise ValueError(f"{path}: not_read maps ids to the reason they are not read")
    return Template(marker, tuple(blocks), dict(not_read), str(path))


def _block(spec, where: str) -> Block:
    if not isinstance(spec, dict) or set(spec) - BLOCK_KEYS:
        raise ValueError(f"{where}: a block has the keys {', '.join(sorted(BLOCK_KEYS))}")
    after = spec.get("after", [])
    after = [after] if isinstance(after, str) else after
    if not isinstance(after, list) or not all(isinstance(a, str) and a.strip() for a in after):
        raise ValueError(f"{where}: after must be a phrase or a list of phrases")
    ids = spec.get("ids")
    if isinstance(ids, list):
        ids = dict.fromkeys(ids, -1)
    if not isinstance(ids, dict) or not ids or not all(isinstance(k, str) for k in ids):
        raise ValueError(f"{where}: ids must list question ids, or map each to the span "
                         "that answers it")
    read = spec.get("read", "span")
    if read not in READS:
        raise ValueError(f"{where}: read must be one of {', '.join(READS)}, got {read!r}")
    mentions = spec.get("mentions", "")
    if not isinstance(mentions, str):
        raise ValueError(f"{where}: mentions must be a phrase")
    picks = {qid: _pick(value, f"{where}: {qid}") for qid, value in ids.items()}
    return Block(ids=picks, after=tuple(after), mentions=mentions, read=read)


def _pick(value, where: str) -> Pick:
    """An id's span: a position (1 = first, -1 = last) or a table of PICK_KEYS."""
    if type(value) is int:
        value = {"span": value}
    if not isinstance(value, dict) or set(value) - PICK_KEYS:
        raise ValueError(f"{where}: give a span position (1 = first, -1 = last) or a table "
                         "with span, before or after")
    span = value.get("span")
    if span is not None and (type(span) is not int or span == 0):
        raise ValueError(f"{where}: span must be a non-zero integer (1 = first, -1 = last)")
    phrases = [value.get(k, "") for k in ("before", "after")]
    if not all(isinstance(p, str) for p in phrases) or all(phrases):
        raise ValueError(f"{where}: before and after are phrases, and only one of them")
    if span is None and not any(phrases):
        span = -1
    return Pick(span=span, before=phrases[0], after=phrases[1])


# ------------------------------------------------------------------------------ files


def read_submission(path: str | Path, template: Template | None = None) -> Submission:
    """The answers in `path`, by its suffix: .toml (an answers file, `load_answers`),
    .ipynb, .md, .markdown, .txt, .html, .htm, .pdf (read through `template`, the homework's
    by default). ValueError with one line naming the file when it cannot be used: missing,
    a folder, another suffix, too big, not UTF-8, not a notebook, not a readable PDF."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a submission file")
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if fmt is None:
        raise ValueError(f"{path}: cannot read a {path.suffix or 'suffix-less'} file; "
                         f"submissions are {', '.join(FORMATS)}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} a "
                         "submission may have")
    if fmt == "toml":
        answers = load_answers(path)
        return Submission(str(path), fmt, answers, dict(answers), dict(answers), [])
    text, problems = submission_text(path, fmt)
    return extract_answers(text, template, source=str(path), format=fmt, problems=problems)


def submission_text(path: Path, fmt: str) -> tuple[str, list[str]]:
    """(the file's text as the template reads it, problems noted while reading)."""
    if fmt == "pdf":
        return _cap(*_pdf_text(path))
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {exc.start} is "
                         f"0x{data[exc.start]:02x})") from None
    if fmt == "ipynb":
        return _cap(*_notebook_text(path, text))
    if fmt == "html":
        return _cap(html_text(text), [])
    return _cap(text, [])


def _cap(text: str, problems: list[str]) -> tuple[str, list[str]]:
    if len(text) > MAX_TEXT_CHARS:
        problems = [*problems, f"the text is {len(text):,} characters; read the first "
                               f"{MAX_TEXT_CHARS:,}"]
        text = text[:MAX_TEXT_CHARS]
    return text, problems


def _notebook_text(path: Path, text: str) -> tuple[str, list[str]]:
    """Markdown cells' sources in order, joined by blank lines (each cell its paragraphs)."""
    try:
        import nbformat
    except ImportError:  # pragma: no cover - nbformat is a dependency
        raise ValueError(f"{path}: reading notebooks needs nbformat (pip install nbformat)"
                         ) from None
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old minor versions warn about missing cell ids
        try:
            nb = nbformat.convert(nbformat.reader.reads(text), 4)
        except Exception as exc:  # nbformat raises many kinds for a file that is not one
            reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            raise ValueError(f"{path}: not a Jupyter notebook ({type(exc).__name__}"
                             f"{': ' + reason if reason else ''})") from None
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as exc:
            problems.append(f"not a valid nbformat 4 notebook ({exc.message[:120]}); its "
                            "markdown cells were read anyway")
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError(f"{path}: not a Jupyter notebook (it has no list of cells)")
    parts = []
    for n, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if len(source) > MAX_CELL_CHARS:
            problems.append(f"cell {n} is {len(source):,} characters; read the first "
                            f"{MAX_CELL_CHARS:,}")
            source = source[:MAX_CELL_CHARS]
        parts.append(source)
    return "\n\n".join(parts), problems


def _pdf_text(path: Path) -> tuple[str, list[str]]:
    """The pages' text through pypdf in layout mode (vertical gaps kept as blank lines)."""
    try:
        import pypdf
    except ImportError:  # pragma: no cover - pypdf is a dependency
        raise ValueError(f"{path}: reading PDFs needs pypdf (pip install pypdf)") from None
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = pypdf.PdfReader(path)
            if reader.is_encrypted:
                raise ValueError("it is encrypted")
            pages = reader.pages
            count = len(pages)
            if count > MAX_PDF_PAGES:
                problems.append(f"the PDF has {count} pages; read the first {MAX_PDF_PAGES}")
            texts, total = [], 0
            for page in pages[:MAX_PDF_PAGES]:
                texts.append(page.extract_text(extraction_mode="layout"))
                total += len(texts[-1])
                if total > MAX_TEXT_CHARS:
                    break
        except Exception as exc:  # pypdf raises many kinds for a damaged file
            reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            raise ValueError(f"{path}: not a readable PDF ({type(exc).__name__}"
                             f"{': ' + reason if reason else ''})") from None
    return "\n\n".join(texts), problems


class _HTMLText(HTMLParser):
    """Text of an HTML page: block elements as paragraphs, bold as `**`, MathJax 2's
    `<script type="math/tex">` as `$...$`; other scripts, styles and the head's title left
    out."""

    BLOCKS = {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
              "blockquote", "table", "tr", "section", "article", "hr", "body"}
    SKIP = {"script", "style", "title", "template", "noscript"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.math = ""  # the delimiter of the math/tex script being read

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            kind = dict(attrs).get("type") or ""
            if tag == "script" and kind.startswith("math/tex") and not self.skip:
                self.math = "$$" if "display" in kind else "$"
                self.parts.append(self.math)
            else:
                self.skip += 1
        elif tag in ("strong", "b"):
            self.parts.append("**")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            if self.math and tag == "script":
                self.parts.append(self.math)
                self.math = ""
            elif self.skip:
                self.skip -= 1
        elif tag in ("strong", "b"):
            self.parts.append("**")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The text of an HTML export (nbconvert keeps math as `$...$` text for MathJax)."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    text = re.sub(r"[ \t]+\n", "\n", "".join(parser.parts))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ------------------------------------------------------------------------------ text

_TRANSLATE = str.maketrans({"\r": "\n", "\u00a0": " ", "\u2018": "'", "\u2019": "'",
                            "\u201c": '"', "\u201d": '"', "\u200b": None, "\ufeff": None,
                            "\ufb01": "fi", "\ufb02": "fl"})


def normalize(text: str) -> str:
    """Line ends, non-breaking spaces, curly quotes and ligatures made plain; Markdown
    blockquote marks at line starts removed."""
    text = text.replace("\r\n", "\n").translate(_TRANSLATE)
    return re.sub(r"(?m)^[ \t]*>[ \t]?", "", text)


_SEP = r"(?:[\s$*`]|\\[()])*"  # what may sit between an anchor's words: space, markup


def phrase_pattern(phrase: str) -> re.Pattern:
    """A phrase matched with case, white space, `$`, `*` and space before punctuation
    ignored: "K, Q, and V" finds "K , Q , and V" and "$K$, $Q$, and $V$"."""
    tokens = re.findall(r"\w+|[^\w\s$*`]", phrase)
    return re.compile(_SEP.join(re.escape(t) for t in tokens), re.IGNORECASE)


def marker_pattern(marker: str) -> re.Pattern:
    words = r"\s+".join(re.escape(w) for w in marker.split())
    return re.compile(rf"(?<!\w){words}(?!\w)[*_]{{0,2}}[ \t]*:?[*_]{{0,2}}", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    kind: str  # math | bold
    start: int  # offsets in the block text, delimiters included
    end: int
    content: str  # inside the delimiters


_OPENER = re.compile(r"\\\$|\$\$|\$|\\\(|\\\[|\*\*")
_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]", "**": "**"}
_OPEN_END = re.compile(r"(?:[+\-*=]|\\cdot|\\times)\s*$")


def spans(text: str) -> tuple[list[Span], bool]:
    """(the math and bold spans of `text` in order, whether a math opener is left unclosed).
    The first opener wins: `**$6L$**` is one bold span, `$a**2$` one math span. Each search
    for a closer that fails ends the search for that delimiter, so this is linear."""
    out, unclosed, i = [], False, 0
    missing: set[str] = set()
    while (m := _OPENER.search(text, i)) is not None:
        opener = m.group()
        i = m.end()
        if opener == "\\$" or opener in missing:
            continue
        close = text.find(_CLOSER[opener], i)
        if close < 0:
            missing.add(opener)
            unclosed = unclosed or opener != "**"
            continue
        content = text[i:close]
        i = close + len(_CLOSER[opener])
        if content.strip():
            out.append(Span("bold" if opener == "**" else "math", m.start(), i, content))
    return _joined(text, out), unclosed


def _is_open(content: str) -> bool:
    return content.count("(") > content.count(")") or _OPEN_END.search(content) is not None


_CLOSING = re.compile(r"[ \t]*\)")


def _joined(text: str, found: list[Span]) -> list[Span]:
    """Math spans split over white space inside one expression, as one span (module doc).
    Parenthesis balances are kept as counts, so a run of many split spans stays linear."""
    out: list[Span] = []
    parts: list[str] = []  # the pieces of the math span being joined
    balance, last = 0, ""  # its open parentheses; its last piece

    def flush():
        nonlocal balance
        if not parts:
            return
        prev = out.pop()
        content, end = " ".join(parts), prev.end
        while balance > 0 and (m := _CLOSING.match(text, end)) is not None:
            content, end, balance = content + ")", m.end(), balance - 1
        out.append(Span("math", prev.start, end, content))
        parts.clear()

    for span in found:
        joins = (parts and span.kind == "math" and (balance > 0 or _OPEN_END.search(last))
                 and not text[out[-1].end:span.start].strip())
        if joins:
            out[-1] = Span("math", out[-1].start, span.end, "")
            parts.append(span.content.strip())
        else:
            flush()
            out.append(span)
            if span.kind == "math":
                parts.append(span.content.strip())
                balance = 0
        if span.kind == "math":
            last = span.content
            balance += span.content.count("(") - span.content.count(")")
    flush()
    return out


def unwrap(content: str) -> str:
    """A span's content with nested delimiters around all of it removed (`$6L$` -> `6L`),
    white space collapsed."""
    text = " ".join(content.split())
    while True:
        for opener, closer in _CLOSER.items():
            inner = text[len(opener):len(text) - len(closer)]
            if (len(text) > len(opener) + len(closer) and text.startswith(opener)
                    and text.endswith(closer) and closer not in inner):
                text = inner.strip()
                break
        else:
            return text


# a line that starts another question or section: "2. How many ...?", "# Heading", a fence
_STOP_LINE = re.compile(r"\n[ \t]*(?:\d{1,2}\.[ \t]+[^\n]{0,400}\?|#{1,6}[ \t]|```)")
# a numbered question inside a paragraph: "... = 3.0$. 2. Which gate ..."
_INLINE_QUESTION = re.compile(r"(?<=[.?!*)\]$])[ \t]+\d{1,2}\.[ \t]+(?=[A-Z])")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")


def block_text(text: str, start: int, stop: int) -> tuple[str, bool]:
    """(the answer block that starts at `start`, no further than `stop`; whether it was cut
    at MAX_BLOCK_CHARS)."""
    lead = re.compile(r"\s*").match(text, start, stop)
    pos = lead.end() if lead else start
    stop = min(stop, pos + 2 * MAX_BLOCK_CHARS)  # what is read of a block, at most
    end, continued = pos, 0
    while True:
        m = _PARAGRAPH_END.search(text, end, stop)
        para_end = m.start() if m else stop
        cut = [c for c in (_STOP_LINE.search(text, end, para_end),
                           _INLINE_QUESTION.search(text, end, para_end)) if c is not None]
        if cut:
            end = min(c.start() for c in cut)
            break
        end = para_end
        if m is None or continued >= MAX_CONTINUED or not _ends_open(text[pos:end]):
            break
        end, continued = m.end(), continued + 1
    block = text[pos:end].rstrip(" \t\n>")
    if len(block) > MAX_BLOCK_CHARS:
        return block[:MAX_BLOCK_CHARS], True
    return block, False


def _ends_open(paragraph: str) -> bool:
    """Whether a paragraph ends inside a math expression: an unclosed `$`, or a last span
    that is math, leaves a parenthesis open or ends in an operator, and ends the text."""
    found, unclosed = spans(paragraph)
    if unclosed:
        return True
    if not found:
        return False
    last = found[-1]
    return (last.kind == "math" and _is_open(last.content)
            and not paragraph[last.end:].strip())


# ------------------------------------------------------------------------------ settings

_NUMBER = r"[-+\u2212]?(?:\d+(?:\.\d+)?|\.\d+)"
_GRU_NAME = (r"(?<![\w\[])(?:W_?(?:xr|hr|xz|hz|xn|hn)(?:[ \t]*\[[ \t]*\d[ \t]*,[ \t]*\d[ \t]*\])?"
             r"|[xh][ \t]*\[[ \t]*\d[ \t]*\]"
             r"|(?:data|control)_(?:input|hidden)|(?:reset|update|new_input|new_hidden)_weight)")
_SETTING = re.compile(
    rf"((?:{_GRU_NAME}[ \t]*(?:=|,|&|\band\b)[ \t]*){{0,4}}{_GRU_NAME})[ \t]*"
    r"(?:=|:|\bto\b|\bat\b|\bas[ \t]+(?:its|the)[ \t]+default(?:[ \t]+value)?(?:[ \t]+of)?)"
    rf"[ \t]*\(?[ \t]*({_NUMBER})", re.IGNORECASE)


def _plain(text: str) -> str:
    """LaTeX and Markdown markup taken out of prose: `$W_{hn}[0,0]$` -> `W_hn[0,0]`."""
    text = re.sub(r"\\[()\[\]]|\$|\*\*|\\[,;!: ]", " ", text)
    text = re.sub(r"_\{(\w+)\}", r"_\1", text)
    return " ".join(text.split())


def read_settings(text: str) -> str:
    """Slider settings stated in prose, in `analysis.gru_exercises`' notation: clauses
    "A = B = V" joined by ", ", alternatives (split at "or") by " or "; "" for none."""
    alternatives = []
    for alt in re.split(r"\bor\b", _plain(text)):
        clauses = []
        for m in _SETTING.finditer(alt):
            names = [re.sub(r"\s+", "", n) for n in re.findall(_GRU_NAME, m.group(1),
                                                              re.IGNORECASE)]
            number = m.group(2).replace("\u2212", "-")
            clauses.append(" = ".join([*names, number]))
        if clauses:
            alternatives.append(", ".join(clauses))
    return " or ".join(alternatives)


# ------------------------------------------------------------------------------ extraction


def extract_answers(text: str, template: Template | None = None, source: str = "<text>",
                    format: str = "text", problems: list[str] | None = None) -> Submission:
    """The answers the template finds in `text` (module doc)."""
    template = template or load_template()
    text = normalize(text)
    problems = list(problems or [])
    markers = [(m.start(), m.end()) for m in marker_pattern(template.marker).finditer(text)]
    answers: dict[str, str] = {}
    extracted: dict[str, str] = {}
    found_spans: dict[str, str] = {}
    if not markers:
        problems.append(f"no {template.marker!r} in the file: no answer was read")
        return Submission(source, format, answers, extracted, found_spans, problems)
    groups = _questions(template)
    anchors = _anchors(text, groups)
    starts = [m[0] for m in markers]
    for k, (after, blocks) in enumerate(groups):
        ids = [qid for b in blocks for qid in b.ids]
        if anchors[k] is None:
            problems.append(f"{', '.join(ids)}: question text {after[-1]!r} not found")
            continue
        region_end = next((a[0] for a in anchors[k + 1:] if a is not None), len(text))
        first = bisect.bisect_left(starts, anchors[k][1])
        last = bisect.bisect_left(starts, region_end)
        if last - first > MAX_BLOCKS:
            problems.append(f"{', '.join(ids)}: {last - first} answer blocks; read the first "
                            f"{MAX_BLOCKS}")
            last = first + MAX_BLOCKS
        texts = []
        for j in range(first, last):
            stop = markers[j + 1][0] if j + 1 < len(markers) else len(text)
            block, cut = block_text(text, markers[j][1], min(stop, region_end))
            if cut:
                problems.append(f"an answer block after {after[-1]!r} is longer than "
                                f"{MAX_BLOCK_CHARS:,} characters; read its start")
            texts.append(block)
        _assign(blocks, texts, after[-1], problems, answers, extracted, found_spans)
    return Submission(source, format, answers, extracted, found_spans, problems)


def _questions(template: Template) -> list[tuple[tuple[str, ...], list[Block]]]:
    """The template's blocks grouped by question: (question text, its blocks)."""
    groups: list[tuple[tuple[str, ...], list[Block]]] = []
    for block in template.blocks:
        if block.after:
            groups.append((block.after, [block]))
        else:
            groups[-1][1].append(block)
    return groups


def _anchors(text: str, groups) -> list[tuple[int, int] | None]:
    """(start of the first phrase, end of the last) of each question's text, each searched
    after the one before; None where a phrase is not found (the search goes on from the last
    question found)."""
    out, cursor = [], 0
    for after, _ in groups:
        start, pos = None, cursor
        for phrase in after:
            m = phrase_pattern(phrase).search(text, pos)
            if m is None:
                start = None
                break
            start = m.start() if start is None else start
            pos = m.end()
        out.append(None if start is None else (start, pos))
        cursor = pos if start is not None else cursor
    return out


def _assign(blocks: list[Block], texts: list[str], question: str, problems: list[str],
            answers: dict, extracted: dict, found_spans: dict) -> None:
    """Give each template block of one question a block of text, then read its ids."""
    used: set[int] = set()
    for block in blocks:
        ids = ", ".join(block.ids)
        pick = None
        if block.mentions:
            pattern = phrase_pattern(block.mentions)
            pick = next((i for i, t in enumerate(texts)
                         if i not in used and pattern.search(t)), None)
        if pick is None:
            pick = next((i for i in range(len(texts)) if i not in used), None)
            if pick is not None and block.mentions:
                problems.append(f"{ids}: no answer after {question!r} mentions "
                                f"{block.mentions!r}; read the next one")
        if pick is None:
            problems.append(f"{ids}: no answer block after {question!r}")
            continue
        used.add(pick)
        _read_block(block, texts[pick], problems, answers, extracted, found_spans)


def _read_block(block: Block, text: str, problems: list[str], answers: dict,
                extracted: dict, found_spans: dict) -> None:
    for qid in block.ids:
        extracted[qid] = text
    if block.read == "settings":
        settings = read_settings(text)
        for qid in block.ids:
            if settings:
                answers[qid] = found_spans[qid] = settings
            else:
                problems.append(f"{qid}: no slider settings (NAME = NUMBER) in the answer")
        return
    found, _ = spans(text)
    positions = {qid: _position(pick, text, found) for qid, pick in block.ids.items()}
    for qid, position in positions.items():
        if isinstance(position, int):
            span = found[position]
            answers[qid] = unwrap(span.content)
            found_spans[qid] = " ".join(text[span.start:span.end].split())
        elif not found and len(set(block.ids.values())) == 1 and _bare_expression(text):
            answers[qid] = found_spans[qid] = " ".join(text.split()).rstrip(".")
            problems.append(f"{qid}: no math ($...$) or bold (**...**) span in the answer; "
                            "read all of it")
        else:
            problems.append(f"{qid}: {position}")


_UNIT_WORDS = re.compile(r"\b(?:FLOPs?|FLOPS|sequential|matrix|matmuls?|multiplications?)\b"
                         r"|\\[A-Za-z]+", re.IGNORECASE)


def _bare_expression(text: str) -> bool:
    """Whether an answer without spans is an expression written bare (`4TLD^2 FLOPs`): short,
    and no run of three lowercase letters (a word) once unit words and LaTeX commands are
    taken out; sizes are capitals (`TLD`)."""
    return 0 < len(text) <= 80 and not re.search(r"[a-z]{3,}", _UNIT_WORDS.sub(" ", text))


def _position(pick: Pick, text: str, found: list[Span]) -> int | str:
    """The index in `found` of the span `pick` names, or why there is none."""
    if not found:
        return "no math ($...$) or bold (**...**) span in the answer"
    phrase = pick.before or pick.after
    m = phrase_pattern(phrase).search(text) if phrase else None
    if m is not None:
        if pick.before:
            index = max((i for i, s in enumerate(found) if s.end <= m.start()), default=None)
        else:
            index = next((i for i, s in enumerate(found) if s.start >= m.end()), None)
        if index is not None:
            return index
    if pick.span is not None and -len(found) <= pick.span <= len(found):
        return pick.span - 1 if pick.span > 0 else len(found) + pick.span
    where = f"{'before' if pick.before else 'after'} {phrase!r}" if phrase else ""
    if pick.span is None:
        return f"no span {where} in the answer"
    return (f"the answer has {len(found)} span{'s' if len(found) != 1 else ''}"
            f"{' and none ' + where if where else ''}; the template reads span {pick.span}")
