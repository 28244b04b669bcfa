"""The SWE-RL reward: SEARCH/REPLACE parsing, application, and patch similarity.

A response has the form::

  <think>
  ...reasoning...
  </think>
  <solution>
  ### path/to/file.py
  <<<<<<< SEARCH
  old lines
  =======
  new lines
  >>>>>>> REPLACE
  </solution>

(the block may be wrapped in a markdown code fence, as in SWE-RL's prompts). The reward is -1
on any format error, else the mean over the union of changed files of
``difflib.SequenceMatcher(None, pred_diff, oracle_diff, autojunk=False).ratio()`` of the per-file
unified diffs; a file changed on one side only scores 0 (Wei et al., arXiv 2502.18449).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping

__all__ = [
  "FormatError",
  "SearchReplace",
  "apply_search_replace",
  "extract_think_solution",
  "format_search_replace",
  "parse_search_replace",
  "patch_similarity",
  "swe_rl_reward",
  "swe_rl_reward_details",
  "unified_diff",
]

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SOLUTION_OPEN, SOLUTION_CLOSE = "<solution>", "</solution>"

_BLOCK_RE = re.compile(
  r"(?:```[^\n]*\n)?### (?P<path>[^\n]*)\n<<<<<<< SEARCH\n(?P<search>[\s\S]*?)\n=======\n"
  r"(?P<replace>[\s\S]*?)\n>>>>>>> REPLACE(?:\n```)?"
)


class FormatError(ValueError):
  """A response that does not follow the SWE-RL format (reward -1)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchReplace:
  """One SEARCH/REPLACE edit of one file."""

  path: str
  search: str
  replace: str


def extract_think_solution(response: str) -> tuple[str, str]:
  """Split a response into its thought and solution.

  Each of ``<think>``, ``</think>``, ``<solution>``, ``</solution>`` must occur exactly once, in
  that order, and the thought must be non-empty.

  Args:
    response: the model's completion text.

  Returns:
    ``(thought, solution)``, both stripped of surrounding whitespace.

  Raises:
    FormatError: naming the violated rule.
  """
  for tag in (THINK_OPEN, THINK_CLOSE, SOLUTION_OPEN, SOLUTION_CLOSE):
    count = response.count(tag)
    if count != 1:
      raise FormatError(f"tag {tag} must occur exactly once, found {count}")
  i_to, i_tc = response.index(THINK_OPEN), response.index(THINK_CLOSE)
  i_so, i_sc = response.index(SOLUTION_OPEN), response.index(SOLUTION_CLOSE)
  if not i_to < i_tc < i_so < i_sc:
    raise FormatError("tags must appear in the order <think></think><solution></solution>")
  thought = response[i_to + len(THINK_OPEN) : i_tc].strip()
  solution = response[i_so + len(SOLUTION_OPEN) : i_sc].strip()
  if not thought:
    raise FormatError("the thought is empty")
  return thought, solution


def parse_search_replace(solution: str) -> list[SearchReplace]:
  """Parse the SEARCH/REPLACE blocks of a solution, in order.

  Block grammar: ``### path`` / ``<<<<<<< SEARCH`` / search lines / ``=======`` / replace lines /
  ``>>>>>>> REPLACE``, optionally fenced with triple backticks.

  Args:
    solution: the text inside ``<solution>...</solution>``.

  Returns:
    The edits, possibly empty.
  """
  return [
    SearchReplace(path=m["path"].strip(), search=m["search"], replace=m["replace"])
    for m in _BLOCK_RE.finditer(solution)
  ]


def format_search_replace(edits: list[SearchReplace]) -> str:
  """Render edits as SEARCH/REPLACE blocks (inverse of :func:`parse_search_replace`)."""
  return "\n".join(
    f"### {e.path}\n<<<<<<< SEARCH\n{e.search}\n=======\n{e.replace}\n>>>>>>> REPLACE"
    for e in edits
  )


def apply_search_replace(files: Mapping[str, str], edits: list[SearchReplace]) -> dict[str, str]:
  """Apply edits to files, returning the new content of every edited file.

  As in SWE-RL, each search text must start at a line boundary (matched as ``"\\n" + search``
  against ``"\\n" + content``) and every occurrence is replaced.

  Args:
    files: path -> original content.
    edits: the parsed edits, applied in order (several edits of one file compose).

  Returns:
    path -> new content, for the edited paths only.

  Raises:
    FormatError: an edit with search == replace, or whose search text is absent (a path not in
      ``files`` counts as an empty file).
  """
  new_files: dict[str, str] = {}
  for edit in edits:
    if edit.search == edit.replace:
      raise FormatError(f"search and replace blocks are identical for {edit.path!r}")
    content = "\n" + new_files.get(edit.path, files.get(edit.path, ""))
    search, replace = "\n" + edit.search, "\n" + edit.replace
    if search not in content:
      raise FormatError(f"search text not found in {edit.path!r}: {edit.search!r}")
    new_files[edit.path] = content.replace(search, replace)[1:]
  return new_files


def unified_diff(old: str, new: str, n_context: int = 3) -> str:
  """Unified diff of two texts without the ``---``/``+++`` header lines ("" when equal)."""
  lines = list(
    difflib.unified_diff(
      old.splitlines(), new.splitlines(), fromfile="old", tofile="new", lineterm="", n=n_context
    )
  )
  return "\n".join(lines[2:])


def patch_similarity(pred_diff: str, oracle_diff: str) -> float:
  """Similarity of two per-file diffs in [0, 1].

  s = difflib.SequenceMatcher(None, pred_diff, oracle_diff, autojunk=False).ratio()
  = 2 M / (|pred| + |oracle|) with M matched characters; 0 when either diff is empty (a file
  changed on one side only).

  Args:
    pred_diff: the predicted unified diff of one file.
    oracle_diff: the oracle unified diff of the same file.

  Returns:
    The similarity, a float in [0, 1] (SWE-RL, arXiv 2502.18449).
  """
  if not pred_diff or not oracle_diff:
    return 0.0
  return difflib.SequenceMatcher(None, pred_diff, oracle_diff, autojunk=False).ratio()


def _changed_diffs(files: Mapping[str, str], new_files: Mapping[str, str]) -> dict[str, str]:
  diffs = {}
  for path, content in new_files.items():
    diff = unified_diff(files.get(path, ""), content)
    if diff:
      diffs[path] = diff
  return diffs


def swe_rl_reward_details(
  response: str, files: Mapping[str, str], oracle_files: Mapping[str, str]
) -> dict:
  """:func:`swe_rl_reward` with its working: the reward, per-file similarities or the error.

  Returns:
    ``{"reward": float, "similarities": {path: s}, "pred_files": {path: new content},
    "error": str | None}``.
  """
  try:
    _, solution = extract_think_solution(response)
    edits = parse_search_replace(solution)
    if not edits:
      raise FormatError("no SEARCH/REPLACE block found in the solution")
    pred_files = apply_search_replace(files, edits)
  except FormatError as e:
    return {"reward": -1.0, "similarities": {}, "pred_files": {}, "error": str(e)}
  pred_diffs = _changed_diffs(files, pred_files)
  oracle_diffs = _changed_diffs(files, oracle_files)
  paths = sorted(set(pred_diffs) | set(oracle_diffs))
  sims = {p: patch_similarity(pred_diffs.get(p, ""), oracle_diffs.get(p, "")) for p in paths}
  reward = sum(sims.values()) / len(sims) if sims else 0.0
  return {"reward": float(reward), "similarities": sims, "pred_files": pred_files, "error": None}


def swe_rl_reward(
  response: str, files: Mapping[str, str], oracle_files: Mapping[str, str]
) -> float:
  r"""SWE-RL's rule-based reward for a SEARCH/REPLACE response.

  R = -1 on a format error, else (1 / |F|) \sum_{f in F} patch_similarity(diff_pred(f),
  diff_oracle(f)), F = files changed by the prediction or by the oracle.

  Format errors: a tag count other than one, an empty thought, no SEARCH/REPLACE block, an
  edit with search == replace, a search text absent from its file.

  Args:
    response: the completion, ``<think>..</think><solution>..</solution>``.
    files: path -> original content (the code context).
    oracle_files: path -> content after the oracle edit (unchanged files may be included).

  Returns:
    The reward, -1.0 or a float in [0, 1] (Wei et al., SWE-RL, arXiv 2502.18449).
  """
  return swe_rl_reward_details(response, files, oracle_files)["reward"]
