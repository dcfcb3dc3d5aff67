"""``galleryctl lifecycle plan|apply|ack``: the lifecycle run from a shell (docs/lifecycle.md).

``plan`` reads the target galleries and the VMs/scale sets, and prints the plan as a table
(action, version id, rule, reason) or, with ``--json``, as the document the audit store keeps.
It changes nothing and writes nothing.

``apply`` runs what the timer runs: plan, write the plan to the audit store, apply it, write the
outcome. It refuses to start without ``--yes``. ``GALLERY_LIFECYCLE_DRY_RUN`` (true by default)
is respected: a dry run only writes the plan; ``--dry-run`` forces one whatever the setting. A
run over the deletion cap halts, and so does every later run, until ``ack``.

``ack RUN_ID`` acknowledges the run that halted the lifecycle (who: ``--by``, default the OS
user; when: now; both recorded in the halt document of the audit store).

Settings come from --settings FILE, GALLERY_SETTINGS, or the environment, like the app's: the ARM
endpoint, the managed identity (``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` or any
``DefaultAzureCredential`` source), ``AzureWebJobsStorage`` for the audit store and the
``GALLERY_LIFECYCLE_*`` settings. Exit codes: 0 done, 1 some action failed, 2 usage or settings
error, 3 a transient failure (retry later), 4 ``ack`` of a run that is not the halt (or no run),
5 the run is halted and changed nothing.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from shared import composition
from shared.cli import exit_codes
from shared.cli.helptext import epilog
from shared.cli.local_settings import add_settings_option, load_settings_file
from shared.cli.output import emit, text_of
from shared.core.errors import PermanentError, TransientError
from shared.lifecycle.apply import RunOutcome
from shared.lifecycle.halt import Halt, HaltRegistry, NoHaltToAcknowledge
from shared.lifecycle.plan import Action, Plan, Rule
from shared.lifecycle.service import LifecycleSnapshot

EXIT_OK = exit_codes.OK
EXIT_FAILED = exit_codes.FAILED
EXIT_USAGE = exit_codes.USAGE
EXIT_TRANSIENT = exit_codes.UNAVAILABLE
EXIT_NOT_THE_HALT = exit_codes.NOT_FOUND
EXIT_HALTED = exit_codes.HALTED
#: Examples and exit codes of each action's --help (docs/cli.md has the same).
_HELP = {
    "plan": epilog(
        [
            ("the plan as a table", "galleryctl lifecycle plan --settings local.settings.json"),
            (
                "what would be deleted",
                "galleryctl lifecycle plan --query 'plan.entries[].versionId' -o tsv",
            ),
        ],
        {
            EXIT_OK: "planned",
            EXIT_USAGE: "usage error, no settings, bad settings",
            EXIT_TRANSIENT: "a transient failure: retry later",
        },
    ),
    "apply": epilog(
        [
            (
                "a run (dry unless GALLERY_LIFECYCLE_DRY_RUN=false)",
                "galleryctl lifecycle apply --yes",
            ),
            ("force a dry run", "galleryctl lifecycle apply --yes --dry-run -o json"),
        ],
        {
            EXIT_OK: "done",
            EXIT_FAILED: "some action failed",
            EXIT_USAGE: "usage error (no --yes), no settings, bad settings",
            EXIT_TRANSIENT: "a transient failure: retry later",
            EXIT_HALTED: "the lifecycle is halted and changed nothing (ack the halting run)",
        },
    ),
    "ack": epilog(
        [("acknowledge the halting run", "galleryctl lifecycle ack 4f1c2a9b7e11 --by alice")],
        {
            EXIT_OK: "acknowledged",
            EXIT_USAGE: "usage error, no settings, bad settings",
            EXIT_TRANSIENT: "a transient failure: retry later",
            EXIT_NOT_THE_HALT: "not the run that halted the lifecycle (or none is halted)",
        },
    ),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``lifecycle`` subcommand with ``plan``, ``apply`` and ``ack``."""
    parser = subparsers.add_parser(
        "lifecycle",
        help="plan or apply end of life and retention for the target galleries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="lifecycle_command", metavar="plan|apply|ack")
    actions.required = True
    plan = actions.add_parser("plan", help="print the plan; change nothing", epilog=_HELP["plan"])
    plan.add_argument("--json", action="store_true", help="print the plan document as JSON")
    add_settings_option(plan)
    plan.set_defaults(handler=run_plan)
    apply = actions.add_parser(
        "apply", help="plan, then apply it and write the audit document", epilog=_HELP["apply"]
    )
    apply.add_argument("--yes", action="store_true", help="really run (required)")
    apply.add_argument(
        "--dry-run",
        action="store_true",
        help="only write the plan to the audit store, whatever GALLERY_LIFECYCLE_DRY_RUN says",
    )
    apply.add_argument("--json", action="store_true", help="print the run document as JSON")
    add_settings_option(apply)
    apply.set_defaults(handler=run_apply)
    ack = actions.add_parser(
        "ack", help="acknowledge the run that halted the lifecycle", epilog=_HELP["ack"]
    )
    ack.add_argument("run_id", metavar="RUN_ID", help="the run id the halt names")
    ack.add_argument("--by", help="who acknowledges (default: the user running galleryctl)")
    add_settings_option(ack)
    ack.set_defaults(handler=run_ack)


def _short(version_id: str) -> str:
    """``gallery/definition/version`` of a version id (the table's width stays readable)."""
    parts = version_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "galleries" in lowered:
        at = lowered.index("galleries")
        return "/".join(parts[at + 1 :: 2])
    return version_id


def format_table(rows: list[tuple[str, str, str, str]], out: TextIO) -> None:
    header = ("ACTION", "VERSION", "RULE", "REASON")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(3)]
        print("  ".join([*cells, row[3]]), file=out)


def print_plan(snapshot: LifecycleSnapshot, out: TextIO) -> None:
    plan = snapshot.plan
    if plan.entries:
        format_table(
            [(e.action.value, _short(e.version_id), e.rule.value, e.reason) for e in plan.entries],
            out,
        )
    else:
        print("nothing to do: no version has reached a lifecycle rule", file=out)
    print("", file=out)
    _summary(snapshot, plan, out)


def _summary(snapshot: LifecycleSnapshot, plan: Plan, out: TextIO) -> None:
    deprecate = sum(1 for e in plan.entries if e.action is Action.DEPRECATE)
    delete = sum(1 for e in plan.entries if e.action is Action.DELETE)
    skip = sum(1 for e in plan.entries if e.action is Action.SKIP)
    mode = "dry run" if plan.policy.dry_run else "live"
    print(
        f"{deprecate} to deprecate, {delete} to delete, {skip} held back ({mode}); "
        f"{_count(len(snapshot.galleries_read), 'gallery', 'galleries')} read with "
        f"{snapshot.arm_calls_total} ARM calls",
        file=out,
    )
    _breaker(snapshot, plan, out)
    for usage in plan.quota_warnings:
        print(
            f"quota warning: {usage.versions} of 10,000 versions in subscription "
            f"{usage.subscription_id}, region {usage.region}",
            file=out,
        )
    for gallery_id in snapshot.galleries_missing:
        print(f"gallery not found: {gallery_id}", file=out)
    for pattern, reason in snapshot.scope.skipped:
        print(f"pattern skipped: {pattern}: {reason}", file=out)


def _breaker(snapshot: LifecycleSnapshot, plan: Plan, out: TextIO) -> None:
    cap = plan.policy.max_deletions_per_run
    if snapshot.halted and snapshot.halt is not None:
        halt = snapshot.halt
        print(f"HALTED: halted by run {halt.run_id} since {halt.halted_at}", file=out)
        print(f"  {halt.message}", file=out)
    elif plan.circuit_breaker_tripped:
        print(
            f"circuit breaker: {plan.count(Action.DELETE)} deletions, more than the {cap} allowed "
            "per run (GALLERY_LIFECYCLE_MAX_DELETIONS_PER_RUN): a live run halts and changes "
            "nothing until acknowledged (galleryctl lifecycle ack RUN_ID)",
            file=out,
        )
    waiting = sum(1 for e in plan.entries if e.rule is Rule.CIRCUIT_BREAKER)
    if waiting:
        print(f"circuit breaker: at most {cap} deletions per run; {waiting} wait", file=out)


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _plan_document(snapshot: LifecycleSnapshot) -> dict[str, Any]:
    return {
        "runId": snapshot.run_id,
        "plan": snapshot.plan.to_document(),
        "context": snapshot.context_document(),
        "halt": snapshot.halt_document(),
    }


def run_plan(args: argparse.Namespace) -> int:
    try:
        load_settings_file(args.settings)
        snapshot = composition.lifecycle_service().plan()
    except TransientError as exc:
        print(f"error (transient, retry later): {exc.message}", file=sys.stderr)
        return EXIT_TRANSIENT
    except PermanentError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    emit(
        args, _plan_document(snapshot), human=lambda _d: text_of(lambda o: print_plan(snapshot, o))
    )
    return EXIT_OK


def _print_outcome(outcome: RunOutcome, out: TextIO) -> None:
    for entry in outcome.done:
        print(f"done    {entry.action.value:<9} {_short(entry.version_id)}", file=out)
    for entry, error in outcome.failed:
        print(f"FAILED  {entry.action.value:<9} {_short(entry.version_id)}: {error}", file=out)


def run_apply(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            "refusing to run without --yes (see the plan first: galleryctl lifecycle plan)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        load_settings_file(args.settings)
        service = composition.lifecycle_service()
        snapshot, outcome = service.run(dry_run=True if args.dry_run else None)
    except TransientError as exc:
        print(f"error (transient, retry later): {exc.message}", file=sys.stderr)
        return EXIT_TRANSIENT
    except PermanentError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    where = composition.lifecycle_audit().blob_name(snapshot.run_id)
    document = {
        **outcome.to_document(),
        "status": snapshot.status,
        "halt": snapshot.halt_document(),
        "auditBlob": where,
    }
    audit = f"{composition.settings().lifecycle.audit_container}/{where}"
    emit(args, document, human=lambda _d: _run_text(snapshot, outcome, audit))
    if snapshot.status == "halted":
        return EXIT_HALTED
    return EXIT_FAILED if outcome.failed else EXIT_OK


def _run_text(snapshot: LifecycleSnapshot, outcome: RunOutcome, audit: str) -> str:
    def write(out: TextIO) -> None:
        _print_run(snapshot, outcome, out)
        print(f"audit: {audit}", file=out)

    return text_of(write)


def _print_run(snapshot: LifecycleSnapshot, outcome: RunOutcome, out: TextIO) -> None:
    print_plan(snapshot, out)
    if snapshot.plan.policy.dry_run:
        print("dry run: nothing changed (GALLERY_LIFECYCLE_DRY_RUN=false to apply)", file=out)
    elif snapshot.status == "halted":
        print("halted: nothing changed", file=out)
    else:
        _print_outcome(outcome, out)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        return "unknown"


def run_ack(args: argparse.Namespace) -> int:
    try:
        load_settings_file(args.settings)
        audit = composition.lifecycle_audit()
        halts = HaltRegistry(audit.documents(), clock=composition.utc_now)
        halt = halts.acknowledge(args.run_id, by=args.by or _operator(), runs=audit)
    except NoHaltToAcknowledge as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_NOT_THE_HALT
    except TransientError as exc:
        print(f"error (transient, retry later): {exc.message}", file=sys.stderr)
        return EXIT_TRANSIENT
    except PermanentError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    emit(args, halt.to_document(), human=lambda _d: _ack_text(halt))
    return EXIT_OK


def _ack_text(halt: Halt) -> str:
    return (
        f"run {halt.run_id} acknowledged by {halt.acknowledged_by} at {halt.acknowledged_at}\n"
        f"later runs apply again; the {len(halt.would_delete)} deletions it held back go at "
        f"most {halt.max_deletions_per_run} per run, oldest first"
    )
