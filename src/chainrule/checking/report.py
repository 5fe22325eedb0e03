"""What ``chainrule check`` found for one class: a status, the relative error of each gradient,
and the diagnoses, printable in English or Chinese and as JSON."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from chainrule.checking.messages import WORDS, render

#: Ordered from bad to good: a class's status is its worst diagnosis's.
SEVERITIES = ("error", "warning", "note")


@dataclasses.dataclass
class Diagnosis:
    """One finding: ``code`` names it (see :mod:`chainrule.checking.messages`), ``args`` fill
    its sentence, ``severity`` is ``"error"`` (the class fails), ``"warning"`` or ``"note"``.
    ``traceback`` is the learner's own traceback, trimmed to the learner's file."""

    code: str
    severity: str = "error"
    args: dict[str, Any] = dataclasses.field(default_factory=dict)
    gradient: str | None = None
    traceback: str | None = None

    def message(self, lang: str = "en") -> str:
        return render(self.code, self.args, lang)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "gradient": self.gradient,
            "message": self.message(lang),
            "traceback": self.traceback,
        }


@dataclasses.dataclass
class GradientResult:
    """One gradient (``dx``, ``dW`` ...): its expected shape and the relative error against
    the numerical gradient (``None`` when it could not be compared, e.g. a wrong shape)."""

    name: str
    shape: tuple[int, ...]
    rel_error: float | None = None
    kinks: int = 0

    def cell(self) -> str:
        if self.rel_error is None:
            return f"{self.name} -"
        return f"{self.name} {self.rel_error:.1e}"


@dataclasses.dataclass
class LayerReport:
    """The verdict on one layer class.

    ``status`` is ``"PASS"``, ``"FAIL"`` (some diagnosis is an error), ``"SKIP"`` (the checker
    does not know the class's inputs) or ``"ERROR"`` (the learner's file itself could not be
    loaded; ``name`` is then the file's name).
    """

    name: str
    status: str
    recognised_as: str | None = None
    gradients: list[GradientResult] = dataclasses.field(default_factory=list)
    diagnoses: list[Diagnosis] = dataclasses.field(default_factory=list)
    lang: str = "en"

    @property
    def ok(self) -> bool:
        """Nothing failed (a skipped class is not a failure)."""
        return self.status in ("PASS", "SKIP")

    def worst(self) -> float | None:
        errors = [g.rel_error for g in self.gradients if g.rel_error is not None]
        return max(errors) if errors else None

    def line(self) -> str:
        """``PASS  Relu   dx 1.2e-11``: the class, its status, each gradient's relative error."""
        grads = "  ".join(g.cell() for g in self.gradients)
        return f"{self.status:<5} {self.name:<20} {grads}".rstrip()

    def details(self, lang: str | None = None) -> list[str]:
        """The diagnoses, one paragraph each, with the learner's traceback indented below."""
        lang = lang or self.lang
        out = []
        for d in self.diagnoses:
            out.append(f"  {WORDS[lang][d.severity]}{d.message(lang)}")
            if d.traceback:
                out.extend("      " + t for t in d.traceback.rstrip("\n").splitlines())
        return out

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        lang = lang or self.lang
        return {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "recognised_as": self.recognised_as,
            "gradients": {
                g.name: {
                    "shape": list(g.shape),
                    "rel_error": _finite(g.rel_error),
                    "kink_crossings": g.kinks,
                }
                for g in self.gradients
            },
            "diagnoses": [d.to_dict(lang) for d in self.diagnoses],
        }

    def __str__(self) -> str:
        return "\n".join([self.line(), *self.details()])


def _finite(x: float | None) -> float | str | None:
    """JSON has no inf/NaN: say them as strings."""
    if x is None or math.isfinite(x):
        return x
    return str(x)


def status_of(diagnoses: list[Diagnosis]) -> str:
    return "FAIL" if any(d.severity == "error" for d in diagnoses) else "PASS"


def format_reports(reports: list[LayerReport], lang: str = "en") -> str:
    """The command's text output: one line per class, then each class's diagnoses."""
    lines = [r.line() for r in reports]
    for r in reports:
        if r.diagnoses:
            lines += ["", f"{r.name}:", *r.details(lang)]
    return "\n".join(lines)
