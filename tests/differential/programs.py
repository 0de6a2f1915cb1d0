"""Random DAG programs over the oracle's rows.

A ``Program`` is a list of steps: ``leaf`` steps (inputs that require grad, drawn as float64
arrays from a seed) and op steps naming an ``oracle.OPS`` row, the indices of earlier
values it reads (fan-out: a value may be read many times) and its static parameters. The
generator evaluates every step concretely in PyTorch (float64, functional) while it draws,
so that each argument is mapped into its op's domain with differentiable ops (``exp(tanh
x)`` or ``x**2 + 0.5`` before a log, ``0.9 tanh x`` before asin, a shift away from a kink,
an added ramp before max or sort, ``A A^T + nI`` before inv) and no step overflows. The
loss is ``sum_o sum(w_o * value_o)`` over the sink values (and a few others) with constant
weights ``w_o``.

Draws go through a small ``Chooser`` (``int``, ``coin``, ``pick``, ``perm``), so the same
generator runs under hypothesis (``programs()``, which shrinks) and from a plain seed
(``random_program(seed)``, for the long run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import oracle
from .oracle import OPS, OPS_BY_KEY, ThCtx

MAX_LEAVES = 6
MAX_SIZE = 96  # elements per value


class RandomChooser:
    """Draws from a NumPy generator (the long run)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def coin(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def perm(self, n: int) -> list[int]:
        return [int(i) for i in self.rng.permutation(n)]


class HypothesisChooser:
    """Draws through hypothesis's ``draw`` (the pytest profile: derandomized, shrinkable)."""

    def __init__(self, draw: Any) -> None:
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def int(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))

    def coin(self, p: float) -> bool:
        return self.draw(self.st.integers(0, 999)) < int(p * 1000)

    def perm(self, n: int) -> list[int]:
        return list(self.draw(self.st.permutations(list(range(n)))))


@dataclass
class Step:
    key: str  # "leaf" or an oracle row
    args: tuple[int, ...] = ()
    params: dict = field(default_factory=dict)


@dataclass
class Program:
    leaves: list[np.ndarray]
    steps: list[Step]
    outputs: list[int]
    weights: list[np.ndarray]

    @property
    def n_ops(self) -> int:
        return sum(s.key != "leaf" for s in self.steps)

    def primitives(self) -> set[str]:
        return {OPS_BY_KEY[s.key].prim for s in self.steps if s.key != "leaf"}

    def has_inplace(self) -> bool:
        return any(s.key != "leaf" and OPS_BY_KEY[s.key].inplace for s in self.steps)

    def restrict(self, outputs: list[int]) -> Program:
        """The sub-program that computes ``outputs`` (steps they do not depend on dropped):
        what a failing program is cut down to before it is reported."""
        keep = set(outputs)
        for i in range(len(self.steps) - 1, -1, -1):
            if i in keep:
                keep.update(self.steps[i].args)
        order = sorted(keep)
        new = {old: k for k, old in enumerate(order)}
        leaf_ix = [i for i, s in enumerate(self.steps) if s.key == "leaf"]
        leaves = [self.leaves[n] for n, i in enumerate(leaf_ix) if i in keep]
        steps = [Step(self.steps[i].key, tuple(new[a] for a in self.steps[i].args),
                      self.steps[i].params) for i in order]
        weights = dict(zip(self.outputs, self.weights, strict=True))
        return Program(leaves, steps, [new[o] for o in outputs], [weights[o] for o in outputs])

    def describe(self) -> str:
        """The program as readable lines: ``v3 = exp(v1)  {params}``."""
        lines = []
        leaf = 0
        for i, s in enumerate(self.steps):
            if s.key == "leaf":
                arr = self.leaves[leaf]
                lines.append(f"v{i} = leaf{leaf} shape={arr.shape} "
                             f"values={np.array2string(arr.ravel()[:6], precision=4)}")
                leaf += 1
            else:
                ps = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                      for k, v in s.params.items()}
                args = ", ".join(f"v{a}" for a in s.args)
                extra = f" {ps}" if ps else ""
                lines.append(f"v{i} = {s.key}({args}){extra}")
        terms = ", ".join(f"v{o}" for o in self.outputs)
        lines.append(f"loss = sum(w * v) over [{terms}]")
        return "\n".join(lines)


class _Gen:
    def __init__(self, ch: Any, min_ops: int, max_ops: int, inplace: bool, empty: bool,
                 keys: list[str] | None) -> None:
        self.ch = ch
        self.min_ops, self.max_ops = min_ops, max_ops
        self.inplace, self.empty = inplace, empty
        self.rng = np.random.default_rng(ch.int(0, 2**31 - 1))
        self.leaves: list[np.ndarray] = []
        self.steps: list[Step] = []
        self.vals: list[np.ndarray] = []
        self.alias: list[bool] = []
        self.dead: list[bool] = []
        self.uses: list[int] = []
        pool = [o for o in OPS if o.weight > 0 and (inplace or not o.inplace)
                and (keys is None or o.key in keys)]
        self.pool: list = []
        for o in pool:
            self.pool += [o] * max(1, int(round(o.weight * 5)))
        self.thctx = ThCtx(functional=True)

    # -- values --------------------------------------------------------------------------
    def leaf(self, shape: tuple) -> int | None:
        if len(self.leaves) >= MAX_LEAVES:
            return None
        scale = [0.5, 1.0, 2.0][self.ch.int(0, 2)]
        arr = self.rng.standard_normal(shape) * scale
        self.leaves.append(np.asarray(arr, dtype=np.float64))
        return self._push(Step("leaf"), np.asarray(arr, dtype=np.float64), alias=False)

    def _push(self, step: Step, value: np.ndarray, alias: bool) -> int:
        self.steps.append(step)
        self.vals.append(value)
        self.alias.append(alias)
        self.dead.append(False)
        self.uses.append(0)
        return len(self.steps) - 1

    def draw_shape(self) -> tuple:
        ch = self.ch
        ndim = [0, 1, 1, 2, 2, 2, 3, 3][ch.int(0, 7)]
        shape = tuple([1, 1, 2, 3, 4, 2, 3][ch.int(0, 6)] for _ in range(ndim))
        if self.empty and ndim and ch.coin(0.04):
            i = ch.int(0, ndim - 1)
            shape = shape[:i] + (0,) + shape[i + 1:]
        return shape

    def live(self) -> list[int]:
        return [i for i in range(len(self.steps)) if not self.dead[i]]

    def evaluate(self, row: Any, args: tuple, params: dict) -> np.ndarray | None:
        ts = [torch.from_numpy(self.vals[a]) for a in args]
        try:
            with torch.no_grad():
                out = row.th(self.thctx, ts, params)
        except (RuntimeError, IndexError, ValueError, TypeError):
            return None
        out = out.detach().numpy().copy()
        if out.size > MAX_SIZE or not np.all(np.isfinite(out)):
            return None
        if out.size and np.max(np.abs(out)) > 1e6:
            return None
        return out

    def apply(self, key: str, args: tuple, params: dict | None = None) -> int | None:
        row = OPS_BY_KEY[key]
        out = self.evaluate(row, args, params or {})
        if out is None:
            return None
        for a in args:
            self.uses[a] += 1
            if row.alias:
                self.alias[a] = True
        idx = self._push(Step(key, tuple(args), params or {}), out, alias=row.alias)
        if row.inplace:
            self.dead[args[0]] = True
        return idx

    # -- domains -------------------------------------------------------------------------
    def satisfied(self, v: np.ndarray, tag: Any) -> bool:
        if v.size == 0 or tag is None:
            return True
        if tag == "pos":
            return bool(np.min(v) > 0.05)
        if tag == "gt-1":
            return bool(np.min(v) > -0.9)
        if isinstance(tag, tuple) and tag[0] == "lim":
            return bool(np.max(np.abs(v)) <= tag[1])
        if tag == "nz0":
            return bool(np.min(np.abs(v)) > 1e-3)
        if tag == "nzd":
            return bool(np.min(np.abs(v)) > 0.1)
        if tag == "frac":
            return bool(np.min(np.abs(v - np.round(v))) > 1e-6)
        if tag == "half":
            return bool(np.min(np.abs(v - np.floor(v) - 0.5)) > 1e-6)
        if tag == "distinct":
            return oracle._distinct_over([v], {}) is None
        if tag == "spd":
            if v.ndim < 2 or v.shape[-1] != v.shape[-2]:
                return False
            return bool(np.all(np.linalg.cond(v) < 1e3))
        return True

    def fix(self, i: int, tag: Any) -> int | None:
        """A new value computed from value ``i`` by differentiable ops that meets ``tag``."""
        ch = self.ch
        v = self.vals[i]
        if tag in ("pos", "gt-1"):
            kind = ch.int(0, 2)
            if kind == 1:
                j = self.apply("square", (i,))
                j = None if j is None else self.apply("add-scalar", (j,), {"c": 0.5})
            elif kind == 2:
                j = self.apply("softplus", (i,))
                j = None if j is None else self.apply("add-scalar", (j,), {"c": 0.1})
            else:
                j = self.apply("tanh", (i,))
                j = None if j is None else self.apply("exp", (j,))
            return j
        if isinstance(tag, tuple) and tag[0] == "lim":
            j = self.apply("tanh", (i,))
            return None if j is None else self.apply("mul-scalar", (j,), {"c": 0.9 * tag[1]})
        if tag in ("nz0", "nzd", "frac", "half", "shift"):
            for c in (0.3125, -0.546875, 0.7890625, -1.140625, 1.90625, 0.171875, -2.6875):
                if tag == "shift" or self.satisfied(v + c, tag):
                    return self.apply("add-scalar", (i,), {"c": c})
            if tag in ("nz0", "nzd"):
                return self.fix(i, "pos")
            return None
        if tag == "distinct":
            n = max(v.size, 1)
            ramp = (np.arange(n, dtype=np.float64) * (math.sqrt(2) / 7))
            ramp = ramp[self.rng.permutation(n)].reshape(v.shape)
            return self.apply("add-const", (i,), {"arr": ramp})
        if tag == "spd":
            t = self.apply("matrix_transpose", (i,))
            if t is None:
                return None
            g = self.apply("matmul", (i, t))
            if g is None:
                return None
            n = v.shape[-1]
            return self.apply("add-const", (g,), {"arr": np.eye(n) * (n + 1.0)})
        return None

    # -- one op --------------------------------------------------------------------------
    def candidates(self, row: Any) -> list[int]:
        out = []
        for i in self.live():
            v = self.vals[i]
            if v.ndim < row.min_ndim or (v.size == 0 and not row.empty_ok):
                continue
            if row.inplace and (self.steps[i].key == "leaf" or self.alias[i]):
                continue
            if "fits" in row.tags and not row.tags["fits"](v.shape):
                continue
            out.append(i)
        return out

    def choose(self, cands: list[int]) -> int:
        # the newest value half the time: long chains; otherwise any: fan-out and reuse
        if self.ch.coin(0.5):
            return cands[-1]
        return cands[self.ch.int(0, len(cands) - 1)]

    def partner(self, shape: tuple, avoid: int = -1) -> int | None:
        same = [i for i in self.live() if self.vals[i].shape == shape and i != avoid]
        if same and self.ch.coin(0.75):
            return self.choose(same)
        return self.leaf(shape)

    def step(self) -> bool:
        ch = self.ch
        row = self.pool[ch.int(0, len(self.pool) - 1)]
        cands = self.candidates(row)
        first = None
        for _ in range(3):
            if not cands:
                break
            i = self.choose(cands)
            if row.params is None and row.shapes is not None:
                if row.shapes(ch, self.vals[i].shape) is None:
                    continue
            first = i
            break
        if first is None:
            if row.inplace or row.first is None:
                return False
            first = self.leaf(row.first(ch))
            if first is None:
                return False
        args = [first]
        if row.arity > 1 and row.shapes is not None:
            shapes = row.shapes(ch, self.vals[first].shape)
            if shapes is None or len(shapes) != row.arity - 1:
                return False
            for s in shapes:
                if math.prod(s) > MAX_SIZE:
                    return False
                j = self.partner(tuple(s))
                if j is None:
                    return False
                args.append(j)
        # domains of the arguments
        for pos, tag in enumerate(row.needs):
            if pos < len(args) and not self.satisfied(self.vals[args[pos]], tag):
                if row.inplace and pos == 0:
                    return False
                j = self.fix(args[pos], tag)
                if j is None or not self.satisfied(self.vals[j], tag):
                    return False
                args[pos] = j
        params: dict = {}
        if row.params is not None:
            params = row.params(ch, [self.vals[a].shape for a in args],
                                [self.vals[a] for a in args])
            if params is None:
                return False
        if row.tags.get("value_of_key") and row.arity == 2:
            # the update's values broadcast into x[key]
            target = self.evaluate(OPS_BY_KEY["getitem"], (first,), params)
            if target is None:
                return False
            j = self.partner(oracle._into_partner(ch, target.shape), avoid=first)
            if j is None:
                return False
            args.append(j)
        if row.check is not None:
            for _ in range(3):
                bad = row.check([self.vals[a] for a in args], params)
                if bad is None:
                    break
                pos, tag = bad
                if row.inplace and pos == 0:
                    return False
                j = self.fix(args[pos], tag)
                if j is None:
                    return False
                args[pos] = j
            else:
                return False
        return self.apply(row.key, tuple(args), params) is not None

    def run(self) -> Program:
        ch = self.ch
        for _ in range(ch.int(1, 3)):
            self.leaf(self.draw_shape())
        # half the programs near the longest (hypothesis favours small draws)
        target = ch.int(self.min_ops, self.max_ops)
        if ch.coin(0.5):
            target = max(self.min_ops, self.max_ops - ch.int(0, self.max_ops // 3))
        tries = 0
        while sum(s.key != "leaf" for s in self.steps) < target and tries < 6 * target:
            tries += 1
            self.step()
        live = [i for i in self.live()]
        inner = [i for i in live if self.steps[i].key != "leaf"]
        outs = [i for i in inner if self.uses[i] == 0]
        for i in inner:
            if i not in outs and ch.coin(0.15):
                outs.append(i)
        if not outs:
            outs = live[-1:]
        weights = [self.rng.standard_normal(self.vals[o].shape) for o in outs]
        return Program(self.leaves, self.steps, sorted(outs),
                       [w for _, w in sorted(zip(outs, weights, strict=True),
                                             key=lambda t: t[0])])


def build(ch: Any, min_ops: int = 3, max_ops: int = 30, inplace: bool = True,
          empty: bool = True, keys: list[str] | None = None) -> Program:
    """A random program drawn through ``ch`` (see the module docstring)."""
    return _Gen(ch, min_ops, max_ops, inplace, empty, keys).run()


def random_program(seed: int, **kw: Any) -> Program:
    return build(RandomChooser(seed), **kw)


def programs(**kw: Any) -> Any:
    """The hypothesis strategy: ``@given(programs())``."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw: Any) -> Program:
        return build(HypothesisChooser(draw), **kw)

    return strategy()
