"""The ``rljax`` command: ``rljax {sft,grpo,ppo,dpo,eval,export} [--preset NAME] [--distributed]
[--field value]``.

Every subcommand is configured by the frozen dataclasses of ``rljax.train`` through tyro
(``rljax grpo --help`` lists every field with its default and doc). ``--preset NAME`` picks the
defaults (``cpu-tiny`` unless given; see ``rljax.presets``). ``rljax grpo`` with no argument
is the README's main job: SFT warm start, held-out accuracy, GRPO, held-out accuracy.
``--distributed`` calls ``jax.distributed.initialize()`` before anything else (many hosts).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

USAGE = """usage: rljax {{sft,grpo,ppo,dpo,eval,export}} [--preset NAME] [--distributed] [--help]
             [--field value]

  sft     supervised fine-tuning on a task's worked solutions
  grpo    SFT warm start + GRPO / DAPO (the main job; no arguments = the cpu-tiny demo)
  ppo     SFT warm start + PPO with a critic (GAE, clipped value loss)
  dpo     SFT warm start + DPO on preference pairs built from the task
  eval    held-out accuracy / pass@k of a run folder
  export  write a run's policy as a Hugging Face checkpoint folder

presets: {presets}

--distributed: call jax.distributed.initialize() first (many hosts: start the same command on
every host, e.g. under srun on SLURM or on every worker of a TPU pod; the cluster is detected)
"""


def _pop_preset(args: list[str]) -> tuple[str, list[str]]:
  name, out, i = "cpu-tiny", [], 0
  while i < len(args):
    a = args[i]
    if a == "--preset":
      if i + 1 >= len(args):
        raise SystemExit("rljax: --preset needs a name")
      name, i = args[i + 1], i + 2
      continue
    if a.startswith("--preset="):
      name = a.split("=", 1)[1]
    else:
      out.append(a)
    i += 1
  return name, out


def _pop_flag(args: list[str], flag: str) -> tuple[bool, list[str]]:
  return flag in args, [a for a in args if a != flag]


def _format_eval(res: dict) -> str:
  keys = [k for k in res if k == "accuracy" or k.startswith("pass@")]
  return "  ".join(f"{k} {100 * res[k]:5.1f}%" for k in keys) + \
      f"  (format ok {100 * res.get('format_ok', 0):.0f}%)"


def _report(result: dict, label: str) -> None:
  b, a = result["before"], result["after"]
  if not a:
    print(f"\n{label} done (task.num_eval = 0: no held-out evaluation); run folder: "
          f"{result['run_dir']}")
    return
  print(f"\n{label} held-out ({int(a.get('num_problems', 0))} problems, greedy unless "
        f"eval.num_samples > 1):")
  print(f"  before: {_format_eval(b)}")
  print(f"  after:  {_format_eval(a)}")
  print(f"  pass@1 change: {100 * (a['accuracy'] - b['accuracy']):+.1f} points")
  print(f"  run folder: {result['run_dir']} (metrics.jsonl, tb/, curves.png, checkpoints/)")


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``rljax`` console script."""
  import tyro

  from rljax import reuse_host_memory

  reuse_host_memory(warn=False)  # before JAX's first computation; a no-op where JAX is up

  from rljax import presets
  from rljax.train import EvalJob, ExportJob

  args = list(sys.argv[1:] if argv is None else argv)
  usage = USAGE.format(presets=", ".join(presets.PRESETS))
  if not args or args[0] in ("-h", "--help"):
    print(usage)
    return 0
  cmd, rest = args[0], args[1:]
  if cmd not in (*presets.JOBS, "eval", "export"):
    print(f"rljax: unknown command {cmd!r}\n\n{usage}", file=sys.stderr)
    return 2
  name, rest = _pop_preset(rest)
  distributed, rest = _pop_flag(rest, "--distributed")
  if distributed and "-h" not in rest and "--help" not in rest:
    import jax

    # Multi-controller JAX: every process runs this same command. The cluster (TPU pod,
    # SLURM, Open MPI, Kubernetes) gives the coordinator, the process count and this rank.
    jax.distributed.initialize()
  prog = f"rljax {cmd}"
  if cmd in ("eval", "export"):
    cls = EvalJob if cmd == "eval" else ExportJob
    job = tyro.cli(cls, args=rest, prog=prog)
  else:
    try:
      default = presets.preset(name, cmd)
    except ValueError as e:
      print(f"rljax: {e}", file=sys.stderr)
      return 2
    desc = (f"{presets.JOBS[cmd].__doc__}\n\nDefaults from --preset {name} "
            f"(presets: {', '.join(presets.PRESETS)}).")
    try:
      job = tyro.cli(presets.JOBS[cmd], args=rest, prog=prog, default=default,
                     description=desc)
    except ValueError as e:  # a field failed validation while tyro built the config
      print(f"rljax {cmd}: invalid config: {e}", file=sys.stderr)
      return 2
  return _run(cmd, job)


def _run(cmd: str, job) -> int:
  from rljax.train import _loops

  runners = {"sft": _loops.run_sft, "grpo": _loops.run_grpo, "ppo": _loops.run_ppo,
             "dpo": _loops.run_dpo}
  if cmd in runners:
    try:
      _loops.validate_job(job)  # before anything is written to the run folder
    except ValueError as e:
      print(f"rljax {cmd}: invalid config: {e}", file=sys.stderr)
      return 2
    result = runners[cmd](job)
    from rljax.train._sharding import is_primary

    if is_primary():  # many hosts: one report, from the process that writes files
      _report(result, cmd.upper())
  elif cmd == "eval":
    print(json.dumps(_loops.run_eval(job), indent=1))
  else:
    print(f"exported to {_loops.run_export(job)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
