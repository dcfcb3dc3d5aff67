#!/bin/sh
# `make lint`: checkov over infra/, offline. Installs its pinned venv when the pins change, then
# fails on any failed check and on any template checkov could not parse (which checkov only
# reports, skipping that file's checks).
set -eu
cd "$(dirname "$0")/../.."
VENV=${CHECKOV_VENV:-.devstack/checkov}
PINS=infra/lint/requirements-checkov.txt
PYTHON=${PYTHON_BOOTSTRAP:-python3}
if ! cmp -s "$PINS" "$VENV/.installed" 2>/dev/null; then
  echo "installing checkov into $VENV (infra/lint/requirements-checkov.txt)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$PINS" >"$VENV.log" 2>&1 \
    || { cat "$VENV.log"; exit 1; }
  cp "$PINS" "$VENV/.installed"
fi
REPORT=$(mktemp -d)
trap 'rm -rf "$REPORT"' EXIT
# Offline: no Prisma Cloud key, no policy or mapping download (--skip-download, BC_SKIP_MAPPING).
BC_SKIP_MAPPING=TRUE CHECKOV_NO_OUTPUT_COLOR=1 "$VENV/bin/checkov" \
  --config-file infra/lint/checkov.yaml --output json --output-file-path "$REPORT" >/dev/null \
  || true
"$VENV/bin/python" - "$REPORT/results_json.json" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1]))
for run in report if isinstance(report, list) else [report]:
    summary = run["summary"]
    for check in run["results"].get("failed_checks", []):
        print(f"FAILED {check['check_id']} {check['check_name']}: {check['resource']} "
              f"({check['file_path']}:{check['file_line_range'][0]})")
    for check in run["results"].get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        print(f"skipped {check['check_id']} on {check['resource']}: {reason}")
    for path in run["results"].get("parsing_errors", []):
        print(f"NOT PARSED {path}")
    print(f"checkov {summary['checkov_version']}: {summary['passed']} passed, "
          f"{summary['failed']} failed, {summary['skipped']} skipped, "
          f"{summary['parsing_errors']} parsing errors, {summary['resource_count']} resources")
    if summary["failed"] or summary["parsing_errors"] or not summary["passed"]:
        sys.exit(1)
PY
