"""The report ``compare_backends`` returns: entries, the first divergence, text and HTML."""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Entry:
    """One compared array: an output or a gradient on one backend against the reference."""

    kind: str  # "output" or "grad"
    name: str
    backend: str
    reference: str
    shape: tuple
    dtype: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    ok: bool  # the values are within tolerance
    note: str = ""  # why it failed besides the values: a shape or dtype that differs
    # a gradient that shows nothing: "absent: ..." (no path reaches its input) or
    # "zero: ..." (identically zero on both backends); "" when it flowed
    flow: str = ""


@dataclass
class Divergence:
    """The first primitive call whose result differs beyond tolerance (``per_op=True``)."""

    backend: str
    reference: str
    index: int  # call number, counted from 0 over the forward then the backward pass
    phase: str  # "forward" or "backward"
    op: str
    inputs: list[str]
    output: str
    ref_output: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    site: str
    reason: str = "values differ"

    def __str__(self) -> str:
        return (f"first divergence on {self.backend} vs {self.reference}: primitive "
                f"'{self.op}' ({self.phase} call #{self.index}) at {self.site}\n"
                f"  inputs: {', '.join(self.inputs) or '-'}\n"
                f"  output: {self.output} ({self.reference}: {self.ref_output})\n"
                f"  {self.reason}: max abs {_num(self.max_abs)}, max rel {_num(self.max_rel)} "
                f"(rtol {_num(self.rtol)}, atol {_num(self.atol)})")


@dataclass
class ComparisonReport:
    """What ``compare_backends`` found; ``print`` it, or display it in a notebook."""

    reference: str
    backends: list[str]
    entries: list[Entry] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    divergences: list[Divergence] = field(default_factory=list)
    ops_recorded: int | None = None
    allow_zero_grads: bool = False  # absent or all-zero gradients do not fail the comparison

    @property
    def ok(self) -> bool:
        """True when every output and gradient is within tolerance, every gradient flowed
        (unless ``allow_zero_grads``) and no primitive diverged."""
        return (all(e.ok for e in self.entries) and not self.divergences
                and (self.allow_zero_grads or not self.no_flow))

    @property
    def no_flow(self) -> list[Entry]:
        """The gradients that are absent or identically zero: agreement there shows nothing."""
        return [e for e in self.entries if e.flow]

    @property
    def divergence(self) -> Divergence | None:
        """The first divergent primitive found (on the first backend that had one)."""
        return self.divergences[0] if self.divergences else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for logs and CI artifacts."""
        return {"ok": self.ok, **asdict(self)}

    def _summary(self) -> str:
        n, bad = len(self.entries), sum(not e.ok for e in self.entries)
        head = (f"compare_backends: {', '.join(self.backends[1:])} vs {self.reference} "
                f"(reference): " + (f"{bad} of {n} NOT within tolerance" if bad else
                                    f"all {n} within tolerance")
                if len(self.backends) > 1 else
                f"compare_backends: only {self.reference} ran, nothing was compared")
        dry, grads = len(self.no_flow), sum(e.kind == "grad" for e in self.entries)
        if dry:
            head += ("; NOTHING FLOWED: every gradient is absent or zero" if dry == grads else
                     f"; {dry} of {grads} gradients absent or zero")
            head += " (allowed)" if self.allow_zero_grads else ""
        if self.ops_recorded is not None:
            head += f"; {self.ops_recorded} primitive calls recorded"
            head += f", first divergent: '{self.divergence.op}'" if self.divergences else ""
        return head

    def _rows(self) -> list[list[str]]:
        return [[e.kind, e.name, e.backend, str(e.shape), e.dtype, _num(e.max_abs),
                 _num(e.max_rel), _num(e.rtol), _num(e.atol), _verdict(e)]
                for e in self.entries]

    def _footer(self) -> list[str]:
        lines = [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        lines += [f"{e.name} on {e.backend}: {e.note}" for e in self.entries if e.note]
        lines += [f"{e.name} on {e.backend}: {e.flow}" for e in self.entries if e.flow]
        if self.ops_recorded is not None and not self.divergences:
            lines.append("per-op: no primitive diverged beyond tolerance")
        lines += [str(d) for d in self.divergences]
        return lines

    def __str__(self) -> str:
        rows = [list(_HEADER)] + self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
        rows.insert(1, ["-" * w for w in widths])
        lines = [self._summary()]
        for r in rows:
            cells = [c.rjust(w) if i in _RIGHT else c.ljust(w)
                     for i, (c, w) in enumerate(zip(r, widths, strict=True))]
            lines.append("  ".join(cells))
        return "\n".join(lines + self._footer())

    def __repr__(self) -> str:
        return f"<ComparisonReport {self._summary()!r}>"

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in _HEADER)
        body = []
        for r in self._rows():
            style = "" if r[-1] == "ok" else ' style="color:#b00020;font-weight:bold"'
            cells = "".join(f"<td style=\"text-align:{'right' if i in _RIGHT else 'left'}\">"
                            f"{esc(c)}</td>" for i, c in enumerate(r))
            body.append(f"<tr{style}>{cells}</tr>")
        foot = "".join(f"<pre>{esc(line)}</pre>" for line in self._footer())
        return (f"<div><p><b>{esc(self._summary())}</b></p><table><thead><tr>{head}</tr>"
                f"</thead><tbody>{''.join(body)}</tbody></table>{foot}</div>")


_HEADER = ("kind", "name", "backend", "shape", "dtype", "max abs", "max rel", "rtol", "atol",
           "ok")
_RIGHT = {5, 6, 7, 8, 9}


def _verdict(e: Entry) -> str:
    """The last column: FAIL for values beyond tolerance, else what a gradient lacked."""
    if not e.ok:
        return "FAIL"
    if e.flow:
        return "NO GRAD" if e.flow.startswith("absent") else "ZERO GRAD"
    return "ok"


def _num(v: float) -> str:
    return "0" if v == 0 else ("-" if math.isnan(v) else f"{v:.3g}")
