"""``make demo`` runs ``python -m devstack.demo``: it must publish both builds and exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_the_demo_publishes_a_vhd_and_a_snapshot_and_exits_0(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devstack.demo", "--dir", str(tmp_path / "demo"), "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=REPO_ROOT,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    final = result.stdout.split("final status", 1)[1]
    assert final.count("succeeded") >= 4  # two rows in the table, two build headers
    assert "devgallery/ubuntu-24.04/1.0.0" in final and "devgallery/ubuntu-24.04/1.0.1" in final
    assert "West Europe  Completed  100%" in final
