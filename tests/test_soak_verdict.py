"""The soak run's plateau verdict (benches/soak.py, docs/soak.md): a flat or noisy series
passes, one that keeps growing after the warm-up fails; the trend is per hour."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))

import soak  # noqa: E402


def series(f, n=60):
    """Samples every 5 s with every watched series given by f(i)."""
    return [{"t_s": i * 5.0, **{k: f(i, k) for k in soak.TOLERANCES}} for i in range(n)]


def test_flat_and_noisy_series_pass():
    # Warm-up growth (the first 20 %), then noise within the tolerances.
    v = soak.plateau(series(lambda i, k: (i if i < 12 else 12) + (i % 3)))
    assert all(x["ok"] for x in v.values()), v
    assert v["rss_mib"]["middle_max"] == v["rss_mib"]["last_max"] == 14


def test_a_steady_leak_fails_each_series():
    # One unit per sample: 16 more in the last third than in the middle one.
    v = soak.plateau(series(lambda i, k: 100 + i))
    for key in ("fds", "tasks", "db_mib", "wal_mib"):
        assert not v[key]["ok"], (key, v[key])
    assert v["fds"]["last_max"] - v["fds"]["middle_max"] == 16
    assert round(v["fds"]["slope_per_hour"]) == 720  # one per 5 s


def test_relative_tolerance_for_rss():
    # RSS at 200 MiB may grow by 10 % (20 MiB) but not by more.
    ok = soak.plateau(series(lambda i, k: 200 + (19 if i >= 44 else 0)))
    bad = soak.plateau(series(lambda i, k: 200 + (21 if i >= 44 else 0)))
    assert ok["rss_mib"]["ok"] and not bad["rss_mib"]["ok"]


def test_too_short_a_run_is_not_a_pass():
    v = soak.plateau(series(lambda i, k: 1, n=2))
    assert not any(x["ok"] for x in v.values())
