"""The house's boundaries: no import cycles, only ``shared/adapters`` imports Azure SDKs, the app
never imports ``devstack``, and modules stay a size one can read.

The checks read the source (``import_graph``); the first tests show on small made-up trees that
each check does catch what it guards against.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.architecture.import_graph import (
    azure_sdk_imports,
    find_cycles,
    imports_of_package,
    project_graph,
    python_files,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Every Python tree of the project.
ALL_CODE = ("shared", "functions", "function_app.py", "devstack", "bench", "tests")
#: What is deployed: the app.
APP_CODE = ("shared", "functions", "function_app.py")
ADAPTERS = "shared/adapters"

MAX_SHARED_MODULE_LINES = 600
MAX_HANDLER_LINES = 120
MAX_DEVSTACK_MODULE_LINES = 700
MAX_PLAIN_SHARED_MODULES = 8
MIN_FEATURE_PACKAGES = 4


def write(root: Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ------------------------------------------------------------------ the checks catch violations


def test_a_cycle_through_a_lazy_import_is_found(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py")
    write(tmp_path, "pkg/a.py", "from pkg.b import thing\n")
    write(tmp_path, "pkg/b.py", "def f():\n    from pkg import c\n")
    write(tmp_path, "pkg/c.py", "import pkg.a\n")
    write(tmp_path, "pkg/d.py", "from pkg.a import x\n")
    assert find_cycles(project_graph(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_relative_imports_and_type_checking_imports_count(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py")
    write(tmp_path, "pkg/a.py", "from .b import y\n")
    write(
        tmp_path,
        "pkg/b.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
    )
    assert find_cycles(project_graph(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b"]]


def test_no_cycle_in_a_layered_tree(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py")
    write(tmp_path, "pkg/core.py", "import json\n")
    write(tmp_path, "pkg/feature.py", "from pkg.core import x\n")
    write(tmp_path, "pkg/top.py", "from pkg import feature, core\n")
    assert find_cycles(project_graph(tmp_path, ["pkg"])) == []


def test_an_azure_sdk_import_is_found_but_not_the_functions_library(tmp_path: Path) -> None:
    write(tmp_path, "app/a.py", "import azure.functions as func\nfrom azure.functions import X\n")
    write(tmp_path, "app/b.py", "def f():\n    from azure.identity import DefaultAzureCredential\n")
    write(
        tmp_path,
        "app/c.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import msal\n",
    )
    found = {(e.importer, e.imported.split(".")[0]) for e in azure_sdk_imports(tmp_path, ["app"])}
    assert found == {("app.b", "azure"), ("app.c", "msal")}


def test_an_import_of_a_package_is_found(tmp_path: Path) -> None:
    write(tmp_path, "app/a.py", "import devstackish\nfrom devstack.stack import LocalStack\n")
    assert [e.line for e in imports_of_package(tmp_path, ["app"], "devstack")] == [2, 2]


# ------------------------------------------------------------------ the project holds them


def test_there_is_no_import_cycle_anywhere() -> None:
    assert find_cycles(project_graph(REPO_ROOT, ALL_CODE)) == []


def test_only_the_adapters_import_azure_sdks() -> None:
    outside = [
        f"{edge.importer}:{edge.line} imports {edge.imported}"
        for edge in azure_sdk_imports(REPO_ROOT, APP_CODE)
        if not edge.importer.startswith("shared.adapters")
    ]
    assert outside == []


def test_the_app_never_imports_devstack() -> None:
    found = [f"{e.importer}:{e.line}" for e in imports_of_package(REPO_ROOT, APP_CODE, "devstack")]
    assert found == []


def line_counts(folder: str) -> dict[str, int]:
    return {
        str(path.relative_to(REPO_ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in python_files(REPO_ROOT, [folder])
    }


@pytest.mark.parametrize(
    ("folder", "limit"),
    [
        ("shared", MAX_SHARED_MODULE_LINES),
        ("functions", MAX_HANDLER_LINES),
        ("devstack", MAX_DEVSTACK_MODULE_LINES),
    ],
)
def test_modules_stay_readable_in_one_sitting(folder: str, limit: int) -> None:
    too_long = {path: count for path, count in line_counts(folder).items() if count > limit}
    assert too_long == {}


def test_shared_is_a_few_plain_modules_over_feature_packages() -> None:
    shared = REPO_ROOT / "shared"
    plain = [p.name for p in shared.glob("*.py") if p.name != "__init__.py"]
    packages = [p.name for p in shared.iterdir() if (p / "__init__.py").is_file()]
    features = set(packages) - {"adapters", "cli", "core"}
    assert len(plain) <= MAX_PLAIN_SHARED_MODULES, plain
    assert len(features) >= MIN_FEATURE_PACKAGES, packages
    assert "core" in packages
