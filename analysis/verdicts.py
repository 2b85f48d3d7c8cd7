"""Verdicts, one home: what a comparison of a prediction (or an answer) with a measurement
(or a derivation) concluded. Values are the strings the CSVs and JSON carry, so a table
filtered with `frame["verdict"].eq(Verdict.EXACT)` reads the same as before.
"""

from __future__ import annotations

from enum import Enum


class Verdict(str, Enum):
    # predicted vs measured (FLOP reconciliation, depth)
    EXACT = "exact"
    MISMATCH = "mismatch"
    NOT_MEASURED = "not measured"
    NOT_COMPARED = "not compared"  # e.g. causal convention against counters of the full square
    # an answer vs the derivation (checker): one per answer, never an exception
    CORRECT = "correct"
    INCORRECT = "incorrect"
    ASYMPTOTIC = "asymptotic"  # an O(...) answer whose leading terms match; never correct
    UNPARSED = "unparsed"  # the answer could not be read; the reason is in the reasoning
    MISSING = "missing"  # no answer (None or blank text)
    UNKNOWN_ID = "unknown id"  # the id is no question of the bank checked against

    def __str__(self) -> str:
        return self.value

    @property
    def passes(self) -> bool:
        """Not a failure: exact, correct, or nothing to compare."""
        return self in (Verdict.EXACT, Verdict.CORRECT, Verdict.NOT_MEASURED,
                        Verdict.NOT_COMPARED)


# The answer checker's verdicts; only CORRECT is full marks (`charlm check-answers` exits 0
# only when every row is CORRECT, 1 otherwise).
ANSWER_VERDICTS = (Verdict.CORRECT, Verdict.INCORRECT, Verdict.ASYMPTOTIC, Verdict.UNPARSED,
                   Verdict.MISSING, Verdict.UNKNOWN_ID)
