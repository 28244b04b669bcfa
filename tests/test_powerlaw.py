import json

import numpy as np
import pytest

from rljax import powerlaw


def test_recovers_known_decreasing_law():
  x = np.arange(1, 201, dtype=np.float64)
  y = 3.0 * x**-0.7 + 1.5
  fit = powerlaw.fit_power_law(x, y)
  assert fit.sign == 1.0
  np.testing.assert_allclose([fit.a, fit.b, fit.c], [3.0, 0.7, 1.5], rtol=1e-4)
  assert fit.r2 > 0.999999
  np.testing.assert_allclose(fit.predict(x), y, atol=1e-6)


def test_recovers_increasing_saturating_curve_with_noise():
  rng = np.random.default_rng(0)
  x = np.arange(1, 301, dtype=np.float64)
  y = 0.9 - 0.8 * x**-0.5 + rng.normal(0, 0.005, x.shape)
  fit = powerlaw.fit_power_law(x, y)
  assert fit.sign == -1.0
  np.testing.assert_allclose(fit.b, 0.5, rtol=0.1)
  np.testing.assert_allclose(fit.predict([1e6]), [0.9], atol=0.02)
  assert fit.r2 > 0.98
  assert fit.rmse < 0.01


def test_window_and_nonfinite_points():
  x = np.arange(1, 101, dtype=np.float64)
  y = 2.0 * x**-1.0 + 0.5
  y[3] = np.nan
  fit = powerlaw.fit_power_law(x, y, x_min=10, x_max=50)
  assert (fit.x_min, fit.x_max, fit.n_points) == (10.0, 50.0, 41)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=[1, 2, 3], y=[1, 2]), "equal length"),
        (dict(x=[1, 2, 3], y=[3, 2, 1]), "at least 4"),
        (dict(x=[0, 1, 2, 3, 4], y=[5, 4, 3, 2, 1]), "positive"),
    ],
)
def test_bad_input_names_the_problem(kwargs, match):
  with pytest.raises(ValueError, match=match):
    powerlaw.fit_power_law(**kwargs)


def test_fit_metrics_file(tmp_path):
  path = tmp_path / "metrics.jsonl"
  with open(path, "w") as f:
    for step in range(1, 60):
      row = {"step": step, "loss": 4.0 * step**-0.3 + 1.0}
      if step % 2 == 0:
        row["reward"] = 1.0 - step**-0.5
      f.write(json.dumps(row) + "\n")
  loss_all, loss_tail = powerlaw.fit_metrics_file(
      path, "loss", windows=[(None, None), (20, None)]
  )
  np.testing.assert_allclose(loss_all.b, 0.3, rtol=1e-3)
  assert loss_tail.x_min == 20
  (reward,) = powerlaw.fit_metrics_file(path, "reward")
  assert reward.sign == -1.0 and reward.n_points == 29
  with pytest.raises(ValueError, match="'acc'.*keys present"):
    powerlaw.fit_metrics_file(path, "acc")
  path.write_text('{"step": 1}\nnot json\n')
  with pytest.raises(ValueError, match="metrics.jsonl:2"):
    powerlaw.load_metrics(path)
