"""What every command shares: --version, -o/--json/--query anywhere, logging options, help texts
without reST and with examples and exit codes, the exit codes themselves, docs/cli.md, and a
start-up that loads no SDK."""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from shared.cli import exit_codes, options
from shared.cli.__main__ import build_parser, main, run_handler
from shared.cli.output import CliError
from tests.unit.cli.conftest import FakeStatusApi
from tests.unit.contract.test_request_fixtures import REPO_ROOT, base_document

DOCS = REPO_ROOT / "docs" / "cli.md"


def write_request(tmp_path: Path, document: object | None = None) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(document if document is not None else base_document()))
    return str(path)


def invalid_request(tmp_path: Path) -> str:
    document = base_document()
    document["publishing"]["replicaCount"] = 0
    document["publishing"]["storageAccountType"] = "Floppy"
    return write_request(tmp_path, document)


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command that runs, by its full name (``lifecycle plan``)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = commands(sub)
                found.update({f"{name} {k}": v for k, v in inner.items()} if inner else {name: sub})
    return found


# -- --version, formats anywhere ---------------------------------------------------------------


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"galleryctl {metadata.version('gallery-pipeline')}\n"


def test_the_installed_entry_point_runs() -> None:
    script = Path(sys.executable).with_name("galleryctl")
    if not script.exists():
        pytest.skip("galleryctl is not installed next to this interpreter")
    shown = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0 and shown.stdout.startswith("galleryctl ")


@pytest.mark.parametrize(
    "argv",
    [
        ["-o", "json", "check-request", "FILE"],
        ["check-request", "FILE", "-o", "json"],
        ["check-request", "--output", "json", "FILE"],
        ["--json", "check-request", "FILE"],
        ["check-request", "FILE", "--json"],
    ],
)
def test_output_options_go_before_or_after_the_command(
    argv: list[str], allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_request(tmp_path)
    assert main([path if a == "FILE" else a for a in argv]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_an_option_before_the_command_is_kept_when_the_command_has_the_same(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--query", "valid", "-o", "tsv", "check-request", write_request(tmp_path)]) == 0
    assert capsys.readouterr().out == "true\n"


def test_none_prints_nothing_and_keeps_the_exit_code(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-request", invalid_request(tmp_path), "-o", "none"]) == 1
    assert capsys.readouterr().out == ""


def test_query_with_tsv_and_yaml(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = invalid_request(tmp_path)
    assert main(["check-request", path, "--query", "problems[].rule", "-o", "tsv"]) == 1
    assert capsys.readouterr().out == "replica-count\nstorage-account-type\n"
    assert main(["check-request", path, "--query", "problems[0]", "-o", "yaml"]) == 1
    assert "rule: replica-count" in capsys.readouterr().out.splitlines()


def test_a_bad_query_is_a_usage_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["check-request", str(tmp_path / "missing.json"), "--query", "[?"])
    assert usage.value.code == 2
    assert "invalid JMESPath" in capsys.readouterr().err


# -- logging ---------------------------------------------------------------------------------


def test_verbose_adds_info_messages(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = invalid_request(tmp_path)
    assert main(["check-request", path]) == 1
    assert "build request rejected" not in capsys.readouterr().err
    assert main(["check-request", path, "--verbose"]) == 1
    assert "INFO shared.cli.check_request: build request rejected" in capsys.readouterr().err


def parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args([*argv, "builds"])


def test_only_show_errors_hides_warnings_and_logging_is_restored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("shared.test")
    before = logging.getLogger().level
    for argv, shown in ((["--only-show-errors"], False), ([], True)):
        with options.cli_logging(parsed(*argv)):
            logger.warning("careful: sig=SECRET")
            logger.error("broken")
        err = capsys.readouterr().err
        assert ("careful" in err) is shown and "broken" in err
        assert "SECRET" not in err  # SAS signatures are masked in every log line
    assert logging.getLogger().level == before


def test_log_levels() -> None:
    assert options.log_levels(parsed()) == (logging.WARNING, logging.WARNING)
    assert options.log_levels(parsed("--verbose")) == (logging.INFO, logging.WARNING)
    assert options.log_levels(parsed("--debug")) == (logging.DEBUG, logging.DEBUG)
    assert options.log_levels(parsed("--only-show-errors")) == (logging.ERROR, logging.ERROR)


def test_debug_shows_azure_core_http_logging(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import HttpLoggingPolicy
    from azure.core.rest import HttpRequest, HttpResponse

    status_api.answer("/api/builds?limit=1&sig=SECRET", {"builds": []})

    def one_request() -> None:
        client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            base_url=status_api.url, policies=[HttpLoggingPolicy()]
        )
        request = HttpRequest("GET", f"{status_api.url}/api/builds?limit=1&sig=SECRET")
        client.send_request(request, connection_timeout=5, read_timeout=5).close()

    with options.cli_logging(parsed("--debug")):
        one_request()
    err = capsys.readouterr().err
    assert "Request URL:" in err and "Response status: 200" in err
    assert "SECRET" not in err
    with options.cli_logging(parsed()):
        one_request()
    assert "Request URL" not in capsys.readouterr().err


# -- help texts --------------------------------------------------------------------------------


def test_every_command_is_documented_in_its_help() -> None:
    parser = build_parser()
    found = commands(parser)
    assert set(found) >= {"validate-vhd", "check-request", "submit", "status", "builds"}
    assert {"rejects", "lifecycle plan", "lifecycle apply", "lifecycle ack"} <= set(found)
    for name, command in found.items():
        text = command.format_help()
        assert "Examples:\n  # " in text, name
        assert "Exit codes:\n    0  " in text, name
        for flag in ("--output", "--query", "--verbose", "--debug", "--only-show-errors"):
            assert flag in text, (name, flag)


def test_no_help_text_has_rest_markup() -> None:
    parser = build_parser()
    helps = [parser.format_help(), *(c.format_help() for c in commands(parser).values())]
    helps += [
        sub.format_help()
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
    ]
    for text in helps:
        assert "``" not in text
        assert not re.search(r":(class|mod|func|meth|data|attr):", text), text


# -- exit codes and docs -----------------------------------------------------------------------


def test_the_exit_codes() -> None:
    assert (exit_codes.OK, exit_codes.FAILED, exit_codes.USAGE) == (0, 1, 2)
    assert (exit_codes.UNAVAILABLE, exit_codes.NOT_FOUND) == (3, 4)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CliError("x", exit_codes.NOT_FOUND), 4),
        (KeyboardInterrupt(), 130),
    ],
)
def test_errors_become_exit_codes(
    error: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(_args: argparse.Namespace) -> int:
        raise error

    args = argparse.Namespace(handler=handler, command="x", output=None, query=None)
    assert run_handler(args) == code
    assert capsys.readouterr().err


def test_pipeline_errors_no_command_translated_become_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shared.core.errors import NotFoundError, PermanentError, TransientError

    for error, code in (
        (TransientError("t"), 3),
        (NotFoundError("n"), 4),
        (PermanentError("p"), 1),
    ):

        def handler(_args: argparse.Namespace, error: Exception = error) -> int:
            raise error

        args = argparse.Namespace(handler=handler, command="x", output=None, query=None)
        assert run_handler(args) == code
    capsys.readouterr()


def test_docs_cli_md_has_every_command_and_its_exit_codes() -> None:
    text = DOCS.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `galleryctl ([\w-]+)`\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    modules = {
        "validate-vhd": "validate_vhd",
        "check-request": "check_request",
        "submit": "submit",
        "status": "status",
        "builds": "builds",
        "rejects": "rejects",
    }
    top_level = {name.split()[0] for name in commands(build_parser())}
    assert set(sections) == top_level
    for name, module_name in modules.items():
        codes = __import__(f"shared.cli.{module_name}", fromlist=["CODES"]).CODES
        documented = set(map(int, re.findall(r"^\| `(\d+)` \|", sections[name], re.M)))
        assert documented == set(codes), name
    for code in exit_codes.MEANINGS:
        assert f"| `{code}` |" in text


def test_start_up_loads_no_sdk_and_no_jmespath() -> None:
    probe = (
        "import sys\n"
        "from shared.cli.__main__ import build_parser\n"
        "build_parser().parse_args(['check-request', 'x.json', '-o', 'json'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'azure', 'msal', 'jmespath'}))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "[]"


def test_a_reader_that_stops_early_is_no_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.cli import output

    def closed_pipe(*_args: object, **_kwargs: object) -> None:
        raise BrokenPipeError

    monkeypatch.setattr(output, "emit", closed_pipe)
    args = argparse.Namespace(
        handler=lambda _a: output.Result({"a": 1}), command="x", output=None, query=None
    )
    assert run_handler(args) == 0
