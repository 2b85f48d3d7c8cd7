"""Generate answers-TOML submissions for trying `charlm grade` at scale (its speed): each
answer to a homework question is, at random, the homework's own answer, the same expression
written another way (spaces, `*`, factors reordered), a wrong one (a coefficient changed, a
term added), one that does not parse, or missing. Nothing here knows the verdicts; the tests
(tests/test_grading.py) write their own submissions with verdicts derived by hand.

    .venv/bin/python scripts/make_submissions.py --count 200 --out /tmp/submissions
    time .venv/bin/python -m charlm grade /tmp/submissions --out /tmp/grades
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200, help="submissions (default 200)")
    ap.add_argument("--out", required=True, help="folder the NAME.toml files are written to")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return ap


def respell(text: str, rng: random.Random) -> str:
    """The same expression written another way: explicit products, or spaces."""
    if rng.random() < 0.5:
        return re.sub(r"(?<=[0-9A-Z^])(?=[A-Z])", "*", text)
    return re.sub(r"(?<=[A-Z0-9])(?=[A-Z])", " ", text)


def wrong(text: str, rng: random.Random) -> str:
    """A different expression: the first coefficient changed, or a term added."""
    m = re.match(r"\d+", text)
    if m and rng.random() < 0.6:
        return str(int(m.group()) * rng.choice((2, 3)) // rng.choice((1, 2)) + 1) + \
            text[m.end():]
    return f"{text} + {rng.choice(('T', 'D', 'TD', 'LT', 'D^2'))}"


def submission(answers: dict[str, str], rng: random.Random) -> dict[str, str]:
    out = {}
    for qid, text in answers.items():
        if qid.startswith("gru."):  # prose and slider settings: as the homework wrote them
            if rng.random() < 0.9:
                out[qid] = text
            continue
        roll = rng.random()
        if roll < 0.35:
            out[qid] = text
        elif roll < 0.6:
            out[qid] = respell(text, rng)
        elif roll < 0.85:
            out[qid] = wrong(text, rng)
        elif roll < 0.92:
            out[qid] = rng.choice(("four T L D squared", "2TL +", "x^2", "T!"))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from analysis.questions import HOMEWORK_ANSWERS, load_answers

    answers = load_answers(HOMEWORK_ANSWERS)
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k in range(args.count):
        chosen = submission(answers, rng)
        lines = [f"{json.dumps(qid)} = {json.dumps(text)}" for qid, text in chosen.items()]
        (out / f"student_{k:03d}.toml").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.count} submissions to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
