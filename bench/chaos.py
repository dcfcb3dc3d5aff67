"""``make chaos`` (``python -m bench.chaos``): the pipeline's reliability suite on the whole stack.

Per seed, on a fresh local stack (Azurite, the Service Bus emulator, the ARM simulator and the
Functions host running ``function_app.py``, as ``devstack up`` starts them; files under
``.devstack/chaos/seed-<n>/``):

1. seed a gallery, ``--sources`` snapshots over half as many definitions (each with a baseline
   version ``5.0.0``);
2. play the seed's plan (:mod:`bench.chaos_plan`, :mod:`bench.chaos_driver`): ``--requests``
   build requests in bursts, each delivered 2-3 times (copies, broker-delayed copies,
   same-MessageId re-sends), the host killed with SIGKILL ``--kills`` times and restarted, fault
   episodes in ARM (5xx and 429 with Retry-After; a version list or PUT stalled past the
   starter's lease);
3. wait until every request has its version and the ledger is idle, send the copies planned for
   after the build finished, wait again;
4. check from the outside (:mod:`bench.chaos_checks`) and print a summary; violations, with the
   host log's lines about them, go to ``violations.txt`` in the seed's directory.

Exit code 0 when every seed holds every invariant, 1 when any is violated, 2 when the harness
itself failed (the stack did not start, a wait ran out of the seed's budget...). Only 127.0.0.1 is
ever contacted; every wait has a timeout and every seed a budget.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from azure.core.exceptions import AzureError
from azure.servicebus.exceptions import ServiceBusError

from bench.chaos_checks import Violation, check, evidence, host_activity, observe
from bench.chaos_driver import (
    Budget,
    Driver,
    HarnessError,
    seed_resources,
    start_stack,
    wait_converged,
)
from bench.chaos_plan import Plan, make_plan
from devstack.control import REPO_ROOT, DevstackError
from devstack.procs import StartupError
from devstack.stack import LocalStack

logger = logging.getLogger("bench.chaos")

DEFAULT_WORKDIR: Final = REPO_ROOT / ".devstack" / "chaos"
#: ARM runs 60x: a 4 GiB snapshot build with its replication takes about 5 s.
ARM_SPEED: Final = 60.0
#: After the window: how long the stack may take to finish every build (a message locked by a
#: killed host comes back after the queue's 60 s lock), then to absorb the late copies.
CONVERGE_TIMEOUT: Final = 240.0
LATE_TIMEOUT: Final = 90.0
#: Quiet time before each final look: several tracker runs (every second) with nothing to do.
SETTLE_SECONDS: Final = 6.0


@dataclass
class SeedResult:
    seed: int
    requests: int
    deliveries: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    activity: Counter[str] = field(default_factory=Counter)
    versions: int = 0
    violations: list[Violation] = field(default_factory=list)
    seconds: float = 0.0
    converge_seconds: float = 0.0
    error: str | None = None
    directory: Path | None = None


def _counted(counts: Counter[str]) -> str:
    """``total (kind=n, ...)``, or ``0``."""
    parts = ", ".join(f"{kind}={n}" for kind, n in sorted(counts.items()))
    return f"{sum(counts.values())} ({parts})" if parts else "0"


def run_seed(seed: int, args: argparse.Namespace) -> SeedResult:
    """One seed on a fresh stack: plan, traffic and chaos, convergence, late copies, checks."""
    plan = make_plan(
        seed, requests=args.requests, sources=args.sources, kills=args.kills, window=args.window
    )
    result = SeedResult(seed=seed, requests=len(plan.requests))
    root = Path(args.workdir) / f"seed-{seed}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    result.directory = root
    (root / "plan.json").write_text(json.dumps(plan_document(plan), indent=2) + "\n")
    budget = Budget(args.window + CONVERGE_TIMEOUT + LATE_TIMEOUT + 120.0)
    stack: LocalStack | None = None
    try:
        stack = start_stack(root, args.arm_speed)
        seed_resources(stack, plan)
        logger.info("seed %d: stack ready in %.1fs", seed, budget.elapsed())
        driver = Driver(stack, plan, budget)
        try:
            driver.run_window()
            window_end = time.monotonic()
            missing = wait_converged(stack, plan, budget, CONVERGE_TIMEOUT)
            result.converge_seconds = time.monotonic() - window_end
            if not missing:
                driver.send_late()
                time.sleep(SETTLE_SECONDS)
                missing = wait_converged(stack, plan, budget, LATE_TIMEOUT)
        finally:
            driver.close()
            result.deliveries, result.faults, result.kills = (
                driver.deliveries,
                driver.faults,
                driver.kills,
            )
        time.sleep(SETTLE_SECONDS)
        seen = observe(stack, plan)
        result.versions = sum(1 for v in seen.versions if v.request_id)
        result.violations = check(plan, seen)
        if missing:
            result.violations.insert(0, Violation("not-converged", "; ".join(missing)))
        result.activity = host_activity(stack.layout.log_file("host"))
        write_violations(root, stack, result.violations)
    except (HarnessError, DevstackError, StartupError, AzureError, ServiceBusError, OSError) as err:
        logger.exception("seed %d: the harness failed", seed)
        result.error = f"{err.__class__.__name__}: {err}"
    finally:
        if stack is not None:
            stack.stop()
        result.seconds = budget.elapsed()
    return result


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as JSON (``plan.json`` in the seed's directory), to replay a finding by hand."""
    return {
        "seed": plan.seed,
        "bursts": [round(b, 1) for b in plan.bursts],
        "requests": [
            {
                "requestId": r.request_id,
                "source": r.source.name,
                "definition": r.source.definition,
                "policy": r.policy_label,
                "version": r.version,
            }
            for r in plan.requests
        ],
        "deliveries": [
            {
                "at": round(d.at, 2),
                "messageId": d.message_id,
                "kind": d.kind.value,
                "delay": round(d.delay, 1),
            }
            for d in [*plan.deliveries, *plan.late]
        ],
        "kills": [{"at": round(k.at, 2), "down": k.down_seconds} for k in plan.kills],
        "episodes": [
            {"at": round(e.at, 1), "seconds": round(e.seconds, 1), "kind": e.kind.value}
            | {"config": e.config}
            for e in plan.episodes
        ],
    }


def write_violations(root: Path, stack: LocalStack, violations: Sequence[Violation]) -> None:
    """``violations.txt``: each violation, then the host log's lines about its requests."""
    if not violations:
        return
    lines: list[str] = []
    host_log = stack.layout.log_file("host")
    for violation in violations:
        lines += [
            str(violation),
            *(f"    {line}" for line in evidence(host_log, violation)),
            "",
        ]
    (root / "violations.txt").write_text("\n".join(lines))


def summary_line(result: SeedResult) -> str:
    if result.error:
        return f"seed {result.seed}: HARNESS ERROR after {result.seconds:.0f}s: {result.error}"
    kinds = Counter(v.kind for v in result.violations)
    return (
        f"seed {result.seed}: {result.requests} requests, {_counted(result.deliveries)} "
        f"deliveries, {result.kills} kills, faults injected {_counted(result.faults)}, "
        f"{result.versions} versions, {len(result.violations)} violations"
        f"{f' ({_counted(kinds)})' if kinds else ''}, {result.seconds:.0f}s "
        f"(converged {result.converge_seconds:.0f}s after the window); the app: "
        f"{_counted(result.activity)}"
    )


def markdown_table(results: Sequence[SeedResult]) -> str:
    rows = [
        "| Seed | Requests | Deliveries | Kills | Faults injected | Versions | Violations "
        "| Duration |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        kinds = Counter(v.kind for v in r.violations)
        violations = "harness error" if r.error else _counted(kinds)
        rows.append(
            f"| {r.seed} | {r.requests} | {_counted(r.deliveries)} | {r.kills} "
            f"| {_counted(r.faults)} | {r.versions} | {violations} | {r.seconds:.0f} s |"
        )
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds, in a row")
    parser.add_argument("--requests", type=int, default=36, help="distinct build requests")
    parser.add_argument("--sources", type=int, default=6, help="snapshots the requests use")
    parser.add_argument("--kills", type=int, default=5, help="host kills (SIGKILL) per seed")
    parser.add_argument("--window", type=float, default=240.0, help="seconds of traffic")
    parser.add_argument("--arm-speed", type=float, default=ARM_SPEED)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    if args.sources < 6 or args.requests < 2 * args.sources or args.window < 60:
        parser.error("use --sources >= 6, --requests >= 2 x --sources and --window >= 60")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    results: list[SeedResult] = []
    for seed in range(args.seed, args.seed + args.seeds):
        result = run_seed(seed, args)
        results.append(result)
        print(summary_line(result), flush=True)
        for violation in result.violations[:20]:
            print(f"    {violation}", flush=True)
        if result.violations:
            print(f"    evidence: {result.directory}/violations.txt", flush=True)
    print()
    print(markdown_table(results))
    if any(r.error for r in results):
        return 2
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
