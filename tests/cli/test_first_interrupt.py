"""Only the first Ctrl-C counts in a command (variability/cli/main.py): the second, arriving while
the command stops its workers or prints its last line, must not cut that short."""

from __future__ import annotations

import signal

import pytest

from variability.cli.main import _FirstInterruptOnly, main


def test_the_first_interrupt_raises_and_every_later_one_is_ignored():
    handler = _FirstInterruptOnly()
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, None)
    for _ in range(3):
        assert handler(signal.SIGINT, None) is None  # no exception: ignored


def test_main_called_from_python_puts_the_callers_handler_back(capsys):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and "variability" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before
