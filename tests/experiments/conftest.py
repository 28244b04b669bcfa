"""The experiment scripts are not a package: put experiments/ on sys.path for their tests."""

import os
import sys

EXPERIMENTS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "experiments"))
if EXPERIMENTS not in sys.path:
  sys.path.insert(0, EXPERIMENTS)
