"""The child processes that searches run their trials in: a result, a user error, a bug and a
death each come back to the parent as what they are."""

import pytest

from cnnkeras._spawn import Child, Died
from cnnkeras.errors import UserError


def test_child_outcomes(capfd):
    assert Child("os.path:join", "a", "b").wait() == "a/b"
    with pytest.raises(UserError, match="unknown model 'nope'"):
        Child("cnnkeras.models:create_model", "nope").wait()
    with pytest.raises(RuntimeError, match="ValueError: math domain error"):
        Child("math:sqrt", -1).wait()
    assert "Traceback" in capfd.readouterr().err  # a bug's traceback is printed by the child
    died = Child("os:_exit", 3).wait()
    assert isinstance(died, Died) and died.exitcode == 3 and str(died) == "exit code 3"
    assert Child("os:getenv", "CNNKERAS_TEST", env={"CNNKERAS_TEST": "x"}).wait() == "x"
