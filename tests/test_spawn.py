"""The child processes that searches run their trials in: a result, a user error, a bug and a
death each come back to the parent as what they are."""

import pytest

from cnnkeras._spawn import Child, Died
from cnnkeras.errors import UserError


def test_child_outcomes(capfd):
    assert Child("os.path:join", "a", "b", tensorflow=False).wait() == "a/b"
    with pytest.raises(UserError, match="unknown model 'nope'"):  # a trial's kind of child:
        Child("cnnkeras.models:create_model", "nope").wait()
    assert "cuda" not in capfd.readouterr().err.lower()  # TensorFlow imported first, quietly
    with pytest.raises(RuntimeError, match="ValueError: math domain error"):
        Child("math:sqrt", -1, tensorflow=False).wait()
    assert "Traceback" in capfd.readouterr().err  # a bug's traceback is printed by the child
    died = Child("os:_exit", 3, tensorflow=False).wait()
    assert isinstance(died, Died) and died.exitcode == 3 and str(died) == "exit code 3"
    env = {"CNNKERAS_TEST": "x"}
    assert Child("os:getenv", "CNNKERAS_TEST", env=env, tensorflow=False).wait() == "x"
