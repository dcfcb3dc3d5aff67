"""README's "Try it by hand" block, run command by command against a fresh local stack.

The block is read from README.md as it is and each line runs in bash, in order, from a temporary
working directory that looks like a clone (``.venv``, ``devstack`` and ``shared`` linked in, the
local examples copied) so that ``local.settings.json`` is written there and not in the checkout.
Shell variables carry over from one line to the next (``BUILD_ID=$(...)``).

What keeps it apart from other stacks, without the README knowing: the ``DEVSTACK_*`` variables
``python -m devstack`` honours (free ports, run and data directories, the settings file, a faster
ARM simulator), and the default ports the README spells out (Azurite ``127.0.0.1:10000``, the
host ``localhost:7071``) rewritten to the free ones in the lines and in the copied examples.
``make setup`` is skipped: the suite runs after it. Every command has a timeout; ``devstack down``
runs at the end whatever happened.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.procs import free_port
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
SECTION = "## Try it by hand"
#: The README's default ports, as it spells them.
AZURITE_DEFAULT = "127.0.0.1:10000"
HOST_DEFAULT = "localhost:7071"
#: Environment the stack or galleryctl would read, which the test must not inherit.
INHERITED_SETTINGS = (
    "AzureWebJobsStorage",
    "ServiceBusConnection",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
)
#: Seconds per command; waits on a build get more.
COMMAND_TIMEOUT = 90.0
WAIT_TIMEOUT = 240.0
BUILD_ID = re.compile(r"\bb-[0-9a-f]{24}\b")


def without_comment(line: str) -> str:
    """The command of a README line, without its trailing ``# ...`` comment."""
    return re.sub(r"\s+#\s.*$", "", line)


def mentions(command: str, piece: str) -> bool:
    """Whether ``piece`` is in ``command`` as whole words (``devstack up``, not ``upload-vhd``)."""
    return re.search(rf"(?:^|[\s/]){re.escape(piece)}(?:\s|$)", command) is not None


def by_hand_lines(readme: str) -> list[str]:
    """The commands of the first ```bash block under "Try it by hand" (no blank lines)."""
    section = readme.split(SECTION, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no ```bash block under Try it by hand"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


@dataclass(frozen=True)
class Ran:
    """One command's outcome."""

    line: str
    returncode: int
    stdout: str
    stderr: str


class Shell:
    """Runs lines in bash one at a time, keeping the shell's variables in a state file."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.state = workdir / ".shell-state"
        self.state.write_text("")

    def run(self, line: str, timeout: float) -> Ran:
        script = (
            "set -a -o pipefail\n"
            f"source {self.state}\n"
            f"{line}\n"
            "rc=$?\n"
            f"export -p > {self.state}\n"
            "exit $rc\n"
        )
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a timeout ends all of it
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate(timeout=10)
            pytest.fail(f"timed out after {timeout:.0f}s: {line}\n{stdout}\n{stderr}")
        return Ran(line, process.returncode, stdout, stderr)


def _checks(ports: dict[str, int]) -> list[tuple[str, Callable[[Ran], None]]]:
    """What the key lines must print (by a piece of the line), beyond exiting 0."""

    def up(ran: Ran) -> None:
        assert "devstack ready in" in ran.stdout

    def seed(ran: Ran) -> None:
        assert re.search(r"^gallery\s+/subscriptions/.*/galleries/devgallery$", ran.stdout, re.M)
        assert re.search(
            r"^snapshot\s+/subscriptions/.*/snapshots/ubuntu-24\.04-os$", ran.stdout, re.M
        )
        assert f"127.0.0.1:{ports['azurite']}/devstoreaccount1/vhds" in ran.stdout

    def check_request(ran: Ran) -> None:
        assert ran.stdout.startswith("valid request")

    def upload(ran: Ran) -> None:
        expected = f"http://127.0.0.1:{ports['azurite']}/devstoreaccount1/vhds/manual/os.vhd"
        assert ran.stdout.strip() == expected

    def validate(ran: Ran) -> None:
        assert "valid fixed VHD" in ran.stdout and "512 bytes in 1 read" in ran.stdout

    def submit_wait(ran: Ran) -> None:
        assert BUILD_ID.search(ran.stdout + ran.stderr), ran.stdout
        assert "(succeeded)" in ran.stdout

    def status_wait(ran: Ran) -> None:
        assert BUILD_ID.search(ran.stdout) and "(succeeded)" in ran.stdout
        assert re.search(r"East US\s+Completed\s+100%", ran.stdout)

    def curl(ran: Ran) -> None:
        assert '"buildId": "b-' in ran.stdout, ran.stdout

    def down(ran: Ran) -> None:
        assert ran.stdout.count("stopped") == 4

    return [
        ("devstack up", up),
        ("devstack seed", seed),
        ("check-request", check_request),
        ("upload-vhd", upload),
        ("validate-vhd", validate),
        ("submit docs/examples/local/snapshot.json --wait", submit_wait),
        ("galleryctl status", status_wait),
        ("curl", curl),
        ("devstack down", down),
    ]


def _workdir(tmp_path: Path, ports: dict[str, int]) -> Path:
    """A clone-like working directory: the venv and packages linked, the examples copied with
    the free ports."""
    work = tmp_path / "clone"
    work.mkdir()
    for name in (".venv", "devstack", "shared"):
        (work / name).symlink_to(REPO_ROOT / name)
    examples = work / "docs" / "examples" / "local"
    examples.mkdir(parents=True)
    for example in (REPO_ROOT / "docs" / "examples" / "local").glob("*.json"):
        text = example.read_text().replace(AZURITE_DEFAULT, f"127.0.0.1:{ports['azurite']}")
        (examples / example.name).write_text(text)
    return work


def _environment(tmp_path: Path, work: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GALLERY_", "DEVSTACK_")) and name not in INHERITED_SETTINGS
    }
    env.update(
        {
            "DEVSTACK_AZURITE_PORT": str(ports["azurite"]),
            "DEVSTACK_SERVICEBUS_PORT": str(ports["servicebus"]),
            "DEVSTACK_ARM_PORT": str(ports["armsim"]),
            "DEVSTACK_HOST_PORT": str(ports["host"]),
            "DEVSTACK_RUN_DIR": str(tmp_path / "run"),
            "DEVSTACK_DATA_DIR": str(tmp_path / "data"),
            "DEVSTACK_SETTINGS_FILE": str(work / "local.settings.json"),
            # Faster than the README's default (about a minute a build): same steps, less waiting.
            "DEVSTACK_ARM_SPEED": "25",
        }
    )
    return env


def test_readme_lines_are_found() -> None:
    lines = by_hand_lines(README.read_text())
    assert lines[-1] == ".venv/bin/python -m devstack down"
    assert any("devstack up" in line for line in lines)
    assert any("status" in line and "--wait" in line for line in lines)


@pytest.mark.timeout(900)
def test_try_it_by_hand_runs_as_written(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("azurite", "servicebus", "armsim", "host")}
    work = _workdir(tmp_path, ports)
    shell = Shell(work, _environment(tmp_path, work, ports))
    checks = _checks(ports)
    lines = by_hand_lines(README.read_text())
    ran_lines: list[str] = []
    stack_up = False
    try:
        for line in lines:
            if line.startswith("make setup"):
                continue  # the suite runs after `make setup`
            command = line.replace(AZURITE_DEFAULT, f"127.0.0.1:{ports['azurite']}")
            command = command.replace(HOST_DEFAULT, f"127.0.0.1:{ports['host']}")
            bare = without_comment(line)
            stack_up = stack_up or mentions(bare, "devstack up")
            ran = shell.run(command, WAIT_TIMEOUT if mentions(bare, "--wait") else COMMAND_TIMEOUT)
            if mentions(bare, "devstack down"):
                stack_up = False
            assert ran.returncode == 0, f"{line}\nexit {ran.returncode}\n{ran.stdout}\n{ran.stderr}"
            for piece, check in checks:
                if mentions(bare, piece):
                    check(ran)
            ran_lines.append(bare)
    finally:
        if stack_up:
            shell.run(".venv/bin/python -m devstack down", COMMAND_TIMEOUT)
    checked = {piece for piece, _ in checks if any(mentions(line, piece) for line in ran_lines)}
    assert checked == {piece for piece, _ in checks}, "a key README line is gone"
    assert (work / "local.settings.json").is_file()  # written where the README reads it
