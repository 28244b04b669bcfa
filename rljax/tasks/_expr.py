"""Exact-fraction arithmetic expressions: a safe parser/evaluator and a 24-style solver."""

from __future__ import annotations

import functools
import itertools
import re
from fractions import Fraction

_TOKEN_RE = re.compile(r"\s*(?:(\d+)|(.))")
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


class ExprError(ValueError):
  """An expression that cannot be parsed or evaluated."""


class DivisionByZero(ExprError):
  """Division by zero inside an otherwise well-formed expression."""


def _tokenize(text: str) -> list[str]:
  text = text.replace("×", "*").replace("÷", "/")
  tokens = []
  for m in _TOKEN_RE.finditer(text.rstrip()):
    num, other = m.groups()
    if num is not None:
      tokens.append(num)
    elif other in "+-*/()":
      tokens.append(other)
    else:
      raise ExprError(f"illegal character {other!r}")
  return tokens


def evaluate(text: str) -> tuple[Fraction, list[int]]:
  """Evaluate ``+ - * /`` over non-negative integers and parentheses with exact fractions.

  No unary minus, no implicit multiplication.

  Args:
    text: the expression, e.g. ``"8/(3-8/3)"``.

  Returns:
    ``(value, numbers)``: the exact value and the integer literals in order of appearance.

  Raises:
    DivisionByZero: when a divisor evaluates to zero.
    ExprError: for anything else that is not a well-formed expression.
  """
  tokens = _tokenize(text)
  if not tokens:
    raise ExprError("empty expression")
  pos = 0
  numbers: list[int] = []

  def peek():
    return tokens[pos] if pos < len(tokens) else None

  def expr() -> Fraction:
    nonlocal pos
    value = term()
    while peek() in ("+", "-"):
      op = tokens[pos]
      pos += 1
      rhs = term()
      value = value + rhs if op == "+" else value - rhs
    return value

  def term() -> Fraction:
    nonlocal pos
    value = atom()
    while peek() in ("*", "/"):
      op = tokens[pos]
      pos += 1
      rhs = atom()
      if op == "*":
        value = value * rhs
      else:
        if rhs == 0:
          raise DivisionByZero("division by zero")
        value = value / rhs
    return value

  def atom() -> Fraction:
    nonlocal pos
    tok = peek()
    if tok is None:
      raise ExprError("unexpected end of expression")
    if tok == "(":
      pos += 1
      value = expr()
      if peek() != ")":
        raise ExprError("missing ')'")
      pos += 1
      return value
    if tok.isdigit():
      pos += 1
      numbers.append(int(tok))
      return Fraction(int(tok))
    raise ExprError(f"unexpected token {tok!r}")

  value = expr()
  if pos != len(tokens):
    raise ExprError(f"unexpected token {tokens[pos]!r}")
  return value, numbers


def format_fraction(x: Fraction) -> str:
  return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


# An expression tree: an int leaf or (op, left, right).
Tree = int | tuple


def tree_value(tree: Tree) -> Fraction:
  if isinstance(tree, int):
    return Fraction(tree)
  op, a, b = tree
  x, y = tree_value(a), tree_value(b)
  return {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else None}[op]


def render(tree: Tree) -> str:
  """Infix text with only the parentheses the precedence rules need."""
  if isinstance(tree, int):
    return str(tree)
  op, a, b = tree

  def side(child, right):
    text = render(child)
    if isinstance(child, int):
      return text
    cp, pp = _PREC[child[0]], _PREC[op]
    if cp < pp or (right and cp == pp and op in "-/"):
      return f"({text})"
    return text

  return f"{side(a, False)}{op}{side(b, True)}"


def steps(tree: Tree) -> list[str]:
  """Post-order worked steps ``x op y = z`` with exact fractions (parenthesised operands)."""
  if isinstance(tree, int):
    return []
  op, a, b = tree

  def operand(x: Fraction) -> str:
    return format_fraction(x) if x.denominator == 1 and x >= 0 else f"({format_fraction(x)})"

  out = steps(a) + steps(b)
  out.append(
    f"{operand(tree_value(a))}{op}{operand(tree_value(b))}={format_fraction(tree_value(tree))}"
  )
  return out


@functools.lru_cache(maxsize=1 << 17)
def _solve_values(values: tuple, target: Fraction, nice: bool):
  """A tree whose leaves are Fractions, over the sorted multiset ``values``; None if none.

  ``nice`` restricts intermediate results to non-negative integers (readable solutions).
  """
  if len(values) == 1:
    return values[0] if values[0] == target else None
  for i, j in itertools.combinations(range(len(values)), 2):
    x, y = values[i], values[j]
    rest = [values[m] for m in range(len(values)) if m not in (i, j)]
    cands = [(x + y, ("+", x, y)), (x * y, ("*", x, y)), (x - y, ("-", x, y))]
    cands.append((y - x, ("-", y, x)))
    if y != 0:
      cands.append((x / y, ("/", x, y)))
    if x != 0:
      cands.append((y / x, ("/", y, x)))
    for value, node in cands:
      if nice and (value < 0 or value.denominator != 1):
        continue
      sub = _solve_values(tuple(sorted([*rest, value])), target, nice)
      if sub is not None:
        return _substitute(sub, value, node)[0]
  return None


def _substitute(tree, value: Fraction, node) -> tuple:
  """Replace the first leaf equal to ``value`` by ``node``; returns (tree, replaced)."""
  if not isinstance(tree, tuple):
    return (node, True) if tree == value else (tree, False)
  op, a, b = tree
  a, done = _substitute(a, value, node)
  if not done:
    b, done = _substitute(b, value, node)
  return (op, a, b), done


def _to_int_leaves(tree) -> Tree:
  if not isinstance(tree, tuple):
    return int(tree)
  op, a, b = tree
  return (op, _to_int_leaves(a), _to_int_leaves(b))


def solve(numbers, target=24, *, use_all: bool = True) -> Tree | None:
  """An expression tree over ``numbers`` (each used once) equal to ``target``, or None.

  Exhaustive search over pairs and the six binary results (a+b, a*b, a-b, b-a, a/b, b/a) with
  exact fractions, memoised on the multiset of values; a solution with non-negative integer
  intermediates is preferred. With ``use_all=False`` any non-empty
  subset may be used (countdown rules).
  """
  target = Fraction(target)
  values = sorted(Fraction(int(x)) for x in numbers)
  subsets = (
    [values]
    if use_all
    else [
      list(c) for size in range(1, len(values) + 1) for c in itertools.combinations(values, size)
    ]
  )
  for nice in (True, False):
    for subset in subsets:
      tree = _solve_values(tuple(subset), target, nice)
      if tree is not None:
        return _to_int_leaves(tree)
  return None
