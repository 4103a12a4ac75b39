"""``eqlab run`` on a pseudo-terminal the test holds, as a user runs it in a terminal."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from collections.abc import Callable

from tests.support.paths import REPO


def _controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after setsid: the pseudo-terminal becomes this session's


class LabOnTerminal:
    """``eqlab run`` as a user starts it in a terminal, here a pseudo-terminal the test holds."""

    def __init__(self, args: list[str], marker: str) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eqlab.cli", "run", *args],
            cwd=REPO,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_controlling_terminal,  # noqa: PLW1509 - one ioctl between fork and exec
            env={**os.environ, "EQLAB_TEST_MARKER": marker},
        )
        os.close(slave)
        self.output = b""

    def read_until(self, seen: Callable[[str], bool], timeout_s: float) -> str:
        ends = time.monotonic() + timeout_s
        while not seen(self.text) and time.monotonic() < ends:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the other side closed: the lab has exited
                    break
        return self.text

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")

    def type_ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout_s)
        finally:
            self.read_until(lambda _: False, 0.5)
            os.close(self.master)
