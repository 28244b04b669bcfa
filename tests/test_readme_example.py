"""The README's losses-in-your-loop block equals examples/losses_in_your_loop.py, and runs."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "losses_in_your_loop.py"


def _readme_block() -> str:
  readme = (ROOT / "README.md").read_text()
  match = re.search(
      r"<!-- losses-example:start -->\n```python\n(.*?)```\n<!-- losses-example:end -->",
      readme,
      re.DOTALL,
  )
  assert match, "README.md lacks the ```python block between the losses-example markers"
  return match.group(1)


def test_readme_block_is_the_example_file():
  assert _readme_block() == EXAMPLE.read_text()


def test_example_runs_and_the_reward_goes_up():
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)  # one CPU device, as a user would run it
  proc = subprocess.run(
      [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, env=env
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  match = re.search(r"first 5 steps ([\d.]+) -> last 5 steps ([\d.]+)", proc.stdout)
  assert match, proc.stdout
  first, last = map(float, match.groups())
  assert last > first + 0.2, proc.stdout
