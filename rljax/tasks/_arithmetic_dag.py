"""``arithmetic_dag``: GSM-Infinite-style problems, a random DAG of k elementary operations.

The Interplay paper (arXiv 2512.07783) studies problems whose difficulty is the number of
operations in a dependency graph over named quantities, rendered in several surface "contexts".
Ours: every quantity is a leaf value or ``x op y`` (op in + - *) of earlier quantities or small
constants, all modulo ``modulus`` (default 10, so every number is one digit: a tiny char-level
model can learn it). Every operation is an ancestor of the asked quantity, so difficulty is
exactly k. The worked solution defines one variable per quantity, in order::

  Define lions as a; so a = 3.
  Define tigers as b; so b = a + 4 = 3 + 4 = 7.
  <answer>7</answer>

and ``process_check`` parses and verifies every step.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Sequence

import numpy as np

from rljax.tasks._base import (
  ANSWER_OPEN,
  Example,
  SeedOrRng,
  Task,
  as_rng,
  check_n,
  extract_answer,
  wrap_answer,
)

_OPS = ("+", "-", "*")
_WORDS = {"+": "plus", "-": "minus", "*": "times"}
MAX_OPS = 22  # 4 leaves + 22 operations = 26 variables a..z


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Template:
  leaf: str  # {x} name, {v} value
  op: str  # {x} name, {a} {w} {b}: operands and the operator word or symbol
  question: str  # {x}
  names: tuple[str, ...]
  symbolic: bool = False  # operands rendered as symbols, names double as variables
  article: str = ""  # prefix for a named operand ("a " in the shop template)
  compact: bool = False  # no spaces, leaves not restated in the solution (shortest sequences)


_ANIMALS = (
  "lions tigers bears wolves foxes owls hawks deer seals otters bats frogs crows geese ducks "
  "moles mice rats hares goats sheep cows pigs yaks emus apes"
).split()
_ITEMS = (
  "pen cup hat map bag box jar mug fan lamp bell drum kite rope sock coat book vase fork "
  "spoon comb ring belt tape bowl brush"
).split()
_TOWNS = (
  "Avon Bath Cork Dover Ely Fife Hull Iona Jura Kent Leeds Mull Nairn Oban Perth Ripon Rye "
  "Sligo Truro Ulm Wick York Zug Lund Bonn Metz"
).split()

TEMPLATES: dict[str, _Template] = {
  "symbolic": _Template(
    leaf="{x} = {v}.",
    op="{x} = {a} {w} {b}.",
    question="Find {x}.",
    names=tuple(string.ascii_lowercase),
    symbolic=True,
  ),
  "compact": _Template(
    leaf="{x}={v}",
    op="{x}={a}{w}{b}",
    question="{x}=?",
    names=tuple(string.ascii_lowercase),
    symbolic=True,
    compact=True,
  ),
  "zoo": _Template(
    leaf="The zoo has {v} {x}.",
    op="There are as many {x} as {a} {w} {b}.",
    question="How many {x} are there?",
    names=tuple(_ANIMALS),
  ),
  "shop": _Template(
    leaf="A {x} costs {v}.",
    op="A {x} costs {a} {w} {b}.",
    question="How much is a {x}?",
    names=tuple(_ITEMS),
    article="a ",
  ),
  "city": _Template(
    leaf="{x} has {v} parks.",
    op="{x} has as many parks as {a} {w} {b}.",
    question="How many parks does {x} have?",
    names=tuple(_TOWNS),
  ),
}

DEFAULT_TEMPLATES = ("symbolic", "zoo", "shop", "city")

_STEP_RE = re.compile(
  r"^(?:Define (?P<name>\S+) as (?P<dvar>[a-z]); so )?(?P<var>[a-z]) ?= ?(?P<rest>[^.]+)\.?$"
)
_NUM = r"\d+"
_OPERAND = r"(?:[a-z]|\d+)"
_OP_REST_RE = re.compile(
  rf"^(?P<a>{_OPERAND}) ?(?P<op>[-+*]) ?(?P<b>{_OPERAND}) ?= ?(?P<n1>{_NUM}) ?(?P<op2>[-+*]) ?"
  rf"(?P<n2>{_NUM}) ?= ?(?P<r>{_NUM})$"
)


def _apply(op: str, x: int, y: int, modulus: int) -> int:
  if op == "+":
    return (x + y) % modulus
  if op == "-":
    return (x - y) % modulus
  return (x * y) % modulus


def _sample_dag(rng: np.random.Generator, k: int, modulus: int, p_const: float) -> list[dict]:
  """Nodes in topological order; the last one is the target. Args are ["node", i] / ["const", c]."""
  for _ in range(1000):
    n_leaves = int(rng.integers(1, min(k + 1, 4) + 1))
    nodes: list[dict] = [
      {"op": None, "args": [], "value": int(rng.integers(0, modulus))} for _ in range(n_leaves)
    ]
    unused_leaves = list(range(n_leaves))
    unused_ops: list[int] = []
    for i in range(k):
      remaining = k - i
      c_min = max(0, len(unused_ops) + 1 - remaining)
      c_max = min(2, len(unused_ops))
      c = int(rng.integers(c_min, c_max + 1)) if c_max > c_min else c_min
      picks = [unused_ops.pop(int(rng.integers(len(unused_ops)))) for _ in range(c)]
      args = [["node", p] for p in picks]
      while len(args) < 2:
        if unused_leaves:
          args.append(["node", unused_leaves.pop(int(rng.integers(len(unused_leaves))))])
          continue
        taken = {a[1] for a in args if a[0] == "node"}
        choices = [j for j in range(len(nodes)) if j not in taken]
        if not choices or rng.random() < p_const:
          args.append(["const", int(rng.integers(1, modulus))])
        else:
          args.append(["node", int(rng.choice(choices))])
      order = rng.permutation(2)
      args = [args[int(order[0])], args[int(order[1])]]
      op = _OPS[int(rng.integers(len(_OPS)))]
      vals = [nodes[a[1]]["value"] if a[0] == "node" else a[1] for a in args]
      nodes.append({"op": op, "args": args, "value": _apply(op, vals[0], vals[1], modulus)})
      unused_ops.append(len(nodes) - 1)
    if not unused_leaves and len(unused_ops) == 1 and _all_ancestors(nodes):
      return nodes
  raise RuntimeError(f"could not sample a DAG with k={k}")  # pragma: no cover


def _all_ancestors(nodes: list[dict]) -> bool:
  seen, stack = set(), [len(nodes) - 1]
  while stack:
    i = stack.pop()
    if i in seen:
      continue
    seen.add(i)
    stack.extend(a[1] for a in nodes[i]["args"] if a[0] == "node")
  return len(seen) == len(nodes)


def count_operations(metadata) -> int:
  """Operations that the asked quantity depends on (equals k for generated problems)."""
  nodes = metadata["nodes"]
  seen, stack = set(), [metadata["target"]]
  while stack:
    i = stack.pop()
    if i not in seen:
      seen.add(i)
      stack.extend(a[1] for a in nodes[i]["args"] if a[0] == "node")
  return sum(1 for i in seen if nodes[i]["op"] is not None)


class ArithmeticDAG(Task):
  """Arithmetic over a random DAG of exactly k operations (Interplay, arXiv 2512.07783).

  Args:
    k: default number of operations, an int or an inclusive ``(lo, hi)`` range.
    templates: surface contexts to draw from (default ``DEFAULT_TEMPLATES``: symbolic, zoo,
      shop, city); hold one out by training on the others and evaluating with
      ``generate(..., template=name)``. ``["compact"]`` gives the shortest sequences
      (``mod 10: a=3,b=4,c=a*b. c=?`` -> ``c=a*b=3*4=2``), for the tiniest models.
    modulus: every value is reduced modulo this (default 10: single digits).
    p_const: probability that a free operand slot is a literal constant.
    require_process: if True, ``is_correct`` also requires :meth:`process_check`.
    correct_reward, wrong_reward, format_penalty: reward for a right answer, a wrong one, and a
      completion without a parseable ``<answer>`` integer.
  """

  name = "arithmetic_dag"

  def __init__(
    self,
    *,
    k: int | tuple[int, int] = 3,
    templates: Sequence[str] | None = None,
    modulus: int = 10,
    p_const: float = 0.3,
    require_process: bool = False,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    format_penalty: float = -1.0,
  ):
    self.templates = tuple(templates) if templates is not None else DEFAULT_TEMPLATES
    for t in self.templates:
      if t not in TEMPLATES:
        raise ValueError(f"templates: unknown template {t!r}; valid: {sorted(TEMPLATES)}")
    if modulus < 2:
      raise ValueError(f"modulus must be >= 2, got {modulus}")
    if not 0.0 <= p_const <= 1.0:
      raise ValueError(f"p_const must be in [0, 1], got {p_const}")
    self.k = k
    self.modulus = modulus
    self.p_const = p_const
    self.require_process = require_process
    self.correct_reward = correct_reward
    self.wrong_reward = wrong_reward
    self.format_penalty = format_penalty
    self._k_range(k)  # validate

  @staticmethod
  def _k_range(k) -> tuple[int, int]:
    lo, hi = (k, k) if isinstance(k, (int, np.integer)) else tuple(k)
    if not 1 <= lo <= hi <= MAX_OPS:
      raise ValueError(f"k must satisfy 1 <= k <= {MAX_OPS} (a range lo <= hi), got {k!r}")
    return int(lo), int(hi)

  def generate(
    self,
    seed_or_rng: SeedOrRng,
    n: int,
    *,
    k: int | tuple[int, int] | None = None,
    template: str | None = None,
    templates: Sequence[str] | None = None,
    direct_frac: float = 0.0,
    answer_noise: float = 0.0,
  ) -> list[Example]:
    """``n`` problems with exactly ``k`` operations (or k uniform in a ``(lo, hi)`` range).

    ``template`` fixes the surface context; ``templates`` draws from a subset.
    ``direct_frac`` is the fraction of problems whose ``solution`` (the SFT target) is the bare
    ``<answer>v</answer>`` without the worked steps: a warm-start corpus of mixed quality, as
    in pre-training data. A policy that imitates it sometimes answers without working (much less
    accurate for a small model), and RL on the outcome reward learns which style pays (RL
    amplifies a behaviour already present after pre-training; Zhao et al., arXiv 2504.07912).
    ``answer_noise`` is the fraction of worked solutions whose final ``<answer>`` tag holds a
    wrong value (uniform over the other residues) after correct working: a sloppy teacher. A
    policy that imitates it copies its own result into the tag only most of the time; an
    outcome reward teaches it to copy always.
    Prompts, answers and rewards are unchanged; with both at 0 the stream is unchanged too.
    """
    check_n(n)
    if not 0.0 <= direct_frac <= 1.0:
      raise ValueError(f"direct_frac must be in [0, 1], got {direct_frac!r}")
    if not 0.0 <= answer_noise <= 1.0:
      raise ValueError(f"answer_noise must be in [0, 1], got {answer_noise!r}")
    rng = as_rng(seed_or_rng)
    lo, hi = self._k_range(self.k if k is None else k)
    pool = (template,) if template is not None else tuple(templates or self.templates)
    for t in pool:
      if t not in TEMPLATES:
        raise ValueError(f"template: unknown template {t!r}; valid: {sorted(TEMPLATES)}")
    out = []
    for _ in range(n):
      k_i = int(rng.integers(lo, hi + 1))
      tname = pool[int(rng.integers(len(pool)))]
      ex = self._make(rng, k_i, tname)
      if direct_frac > 0 and rng.random() < direct_frac:
        ex = dataclasses.replace(ex, solution=wrap_answer(ex.answer))
      elif answer_noise > 0 and rng.random() < answer_noise:
        wrong = (int(ex.answer) + int(rng.integers(1, self.modulus))) % self.modulus
        body = ex.solution[: ex.solution.rindex(ANSWER_OPEN)]
        ex = dataclasses.replace(ex, solution=body + wrap_answer(str(wrong)))
      out.append(ex)
    return out

  def _make(self, rng: np.random.Generator, k: int, tname: str) -> Example:
    tpl = TEMPLATES[tname]
    nodes = _sample_dag(rng, k, self.modulus, self.p_const)
    perm = rng.permutation(len(tpl.names))[: len(nodes)]
    names = [tpl.names[int(j)] for j in perm]
    for node, name in zip(nodes, names):
      node["name"] = name
    meta = {
      "k": k,
      "template": tname,
      "modulus": self.modulus,
      "target": len(nodes) - 1,
      "nodes": nodes,
    }
    return Example(
      prompt=self._render_prompt(tpl, nodes),
      answer=str(nodes[-1]["value"]),
      solution=self._render_solution(tpl, nodes),
      metadata=meta,
    )

  def _render_prompt(self, tpl: _Template, nodes: list[dict]) -> str:
    def operand(arg):
      if arg[0] == "const":
        return str(arg[1])
      return tpl.article + nodes[arg[1]]["name"]

    if tpl.compact:
      defs = []
      for node in nodes:
        if node["op"] is None:
          defs.append(tpl.leaf.format(x=node["name"], v=node["value"]))
        else:
          a, b = operand(node["args"][0]), operand(node["args"][1])
          defs.append(tpl.op.format(x=node["name"], a=a, w=node["op"], b=b))
      question = tpl.question.format(x=nodes[-1]["name"])
      return f"mod {self.modulus}: {','.join(defs)}. {question}"
    parts = [f"Work mod {self.modulus}."]
    for node in nodes:
      if node["op"] is None:
        parts.append(tpl.leaf.format(x=node["name"], v=node["value"]))
      else:
        w = node["op"] if tpl.symbolic else _WORDS[node["op"]]
        a, b = operand(node["args"][0]), operand(node["args"][1])
        parts.append(tpl.op.format(x=node["name"], a=a, w=w, b=b))
    parts.append(tpl.question.format(x=nodes[-1]["name"]))
    return " ".join(parts)

  @staticmethod
  def _variables(tpl: _Template, nodes: list[dict]) -> list[str]:
    if tpl.symbolic:
      return [node["name"] for node in nodes]
    return list(string.ascii_lowercase[: len(nodes)])

  def _render_solution(self, tpl: _Template, nodes: list[dict]) -> str:
    var = self._variables(tpl, nodes)
    lines = []
    for i, node in enumerate(nodes):
      prefix = "" if tpl.symbolic else f"Define {node['name']} as {var[i]}; so "
      if node["op"] is None:
        if not tpl.compact:
          lines.append(f"{prefix}{var[i]} = {node['value']}.")
        continue
      syms, vals = [], []
      for kind, ref in node["args"]:
        syms.append(var[ref] if kind == "node" else str(ref))
        vals.append(nodes[ref]["value"] if kind == "node" else ref)
      op = node["op"]
      if tpl.compact:
        lines.append(f"{var[i]}={syms[0]}{op}{syms[1]}={vals[0]}{op}{vals[1]}={node['value']}")
        continue
      lines.append(
        f"{prefix}{var[i]} = {syms[0]} {op} {syms[1]} = {vals[0]} {op} {vals[1]} = {node['value']}."
      )
    lines.append(wrap_answer(str(nodes[-1]["value"])))
    return "\n".join(lines)

  def format_prompt(self, example: Example) -> str:
    return example.prompt + "\n"

  def alphabet(self) -> str:
    chars = set(string.digits + string.ascii_letters + " .;=+-*?\n")
    for tpl in TEMPLATES.values():
      for text in (tpl.leaf, tpl.op, tpl.question, *tpl.names, *_WORDS.values()):
        chars.update(text)
    chars.update("Define as so Work mod:,")
    chars -= set("{}")
    return "".join(sorted(chars))

  def _parsed_answer(self, completion: str) -> int | None:
    ans = extract_answer(completion)
    if ans is None or not re.fullmatch(r"-?\d+", ans):
      return None
    return int(ans)

  def answer_correct(self, example: Example, completion: str) -> bool:
    ans = self._parsed_answer(completion)
    return ans is not None and ans == int(example.answer)

  def process_check(self, example: Example, completion: str) -> bool:
    """Parse the worked steps and verify every one, then the final answer.

    A step is ``[Define NAME as v; so ]v = N.`` for a given quantity or
    ``[Define NAME as v; so ]v = A op B = n1 op n2 = r.`` for an operation, where A and B are
    earlier variables or constants matching the problem's definition (either order for + and *),
    n1 and n2 their values as computed in earlier steps, and r = (n1 op n2) mod modulus. Each
    variable is defined once; the asked quantity must be defined and its value be the answer.
    Spaces around ``=`` and operators and the final period are optional; in the symbolic
    templates a given quantity may be used without restating it.
    """
    meta = example.metadata
    nodes, modulus = meta["nodes"], int(meta["modulus"])
    tpl = TEMPLATES[meta["template"]]
    name_to_node = {node["name"]: i for i, node in enumerate(nodes)}
    text = completion.split(ANSWER_OPEN)[0]
    var_node: dict[str, int] = {}
    var_value: dict[str, int] = {}
    for raw in text.strip().splitlines():
      line = raw.strip()
      if not line:
        continue
      m = _STEP_RE.match(line)
      if m is None:
        return False
      v = m["var"]
      if v in var_node:
        return False
      if tpl.symbolic:
        if m["name"] is not None or v not in name_to_node:
          return False
        i = name_to_node[v]
      else:
        if m["name"] is None or m["dvar"] != v or m["name"] not in name_to_node:
          return False
        i = name_to_node[m["name"]]
        if i in var_node.values():
          return False
      node = nodes[i]
      if node["op"] is None:
        if not re.fullmatch(r"\d+", m["rest"]) or int(m["rest"]) != node["value"]:
          return False
        value = node["value"]
      else:
        r = _OP_REST_RE.match(m["rest"])
        if r is None or r["op"] != node["op"] or r["op2"] != node["op"]:
          return False
        refs, vals = [], []
        for sym in (r["a"], r["b"]):
          if sym.isdigit():
            refs.append(("const", int(sym)))
            vals.append(int(sym))
          elif sym in var_node:
            refs.append(("node", var_node[sym]))
            vals.append(var_value[sym])
          elif tpl.symbolic and sym in name_to_node and nodes[name_to_node[sym]]["op"] is None:
            refs.append(("node", name_to_node[sym]))
            vals.append(nodes[name_to_node[sym]]["value"])
          else:
            return False
        want = [(a[0], a[1]) for a in node["args"]]
        if refs != want and not (node["op"] in "+*" and refs[::-1] == want):
          return False
        if [int(r["n1"]), int(r["n2"])] != vals:
          return False
        value = _apply(node["op"], vals[0], vals[1], modulus)
        if int(r["r"]) != value:
          return False
      var_node[v], var_value[v] = i, value
    target = int(meta["target"])
    if target not in var_node.values():
      return False
    return self.answer_correct(example, completion)

  def is_correct(self, example: Example, completion: str) -> bool:
    if not self.answer_correct(example, completion):
      return False
    return self.process_check(example, completion) if self.require_process else True

  def reward(self, example: Example, completion: str) -> float:
    if self._parsed_answer(completion) is None:
      return self.format_penalty
    return self.correct_reward if self.is_correct(example, completion) else self.wrong_reward


__all__ = ["DEFAULT_TEMPLATES", "MAX_OPS", "TEMPLATES", "ArithmeticDAG", "count_operations"]
