"""The two places where cnnkeras needs Keras Tuner internals (keras-tuner 1.4), kept here so
that an upgrade is checked in one file (tests/test_tuning.py exercises both)."""

from __future__ import annotations


def retries_pending(oracle) -> bool:
    """Whether failed trials wait to be run again. Keras Tuner has no public view of its
    retry queue, and a search with every trial created may still owe retries."""
    return bool(getattr(oracle, "_retry_queue", ()))


def save_all_trials(oracle) -> None:
    """Write every trial's state to disk. Keras Tuner raises its "too many consecutive
    failures" error before it saves the last failed trial; the results table needs it."""
    for trial in getattr(oracle, "trials", {}).values():
        oracle._save_trial(trial)
