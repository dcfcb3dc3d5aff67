"""The status page (``GET /api/ui``): the status views rendered as one small HTML document.

Pure: it takes the documents of :func:`shared.builds.status.status_page_documents` and returns
HTML; it reads nothing and imports no SDK. Plain HTML and CSS with one small inline script (an
auto-refresh every 10 s that can be paused; the page works without it), no external asset, so a
strict Content-Security-Policy (:data:`CONTENT_SECURITY_POLICY`, by hash) allows exactly the
page's own style and script.

Accessible by construction: landmarks (``<header>``, ``<main>``, one ``<section>`` per view),
tables with a ``<caption>`` and ``<th scope>``, every progress bar labelled and its percentage
also written as text, state shown as words (never by colour alone), contrast of at least 4.5:1,
and tables that scroll sideways in a narrow window. Every value goes through :func:`_text`:
secrets masked, URL queries (SAS) dropped, then ``html.escape``.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from shared.core.redaction import redact_secrets, strip_query

TITLE: Final = "Gallery Pipeline status"
REFRESH_SECONDS: Final = 10

_STYLE: Final = """
:root { color-scheme: light; --fg: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8; --bg: #ffffff;
  --head: #f0f0f0; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header, main { padding: 0 1rem; max-width: 80rem; margin: 0 auto; }
h1 { font-size: 1.5rem; margin: 1rem 0 .25rem; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
p { margin: .25rem 0 .75rem; }
.meta { color: var(--muted); }
button { font: inherit; padding: .25rem .75rem; border: 1px solid var(--accent);
  color: var(--accent); background: var(--bg); border-radius: .25rem; cursor: pointer; }
button:focus-visible, .scroll:focus-visible { outline: 3px solid var(--accent);
  outline-offset: 2px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; min-width: 36rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; color: var(--muted); }
th, td { text-align: left; vertical-align: top; padding: .4rem .5rem;
  border-bottom: 1px solid var(--line); }
thead th { background: var(--head); }
code { font: .85em/1.3 ui-monospace, SFMono-Regular, Consolas, monospace;
  overflow-wrap: anywhere; }
.empty { color: var(--muted); font-style: italic; }
.note { border-left: 4px solid var(--accent); padding: .25rem .75rem; background: #eef4fb; }
.warning { border-left: 4px solid #a4161a; padding: .25rem .75rem; background: #fde8e8;
  color: #5c0b0e; }
.state { display: inline-block; padding: 0 .4rem; border-radius: .25rem; font-weight: 600;
  border: 1px solid currentColor; }
.state-succeeded { color: #0a5c26; background: #e6f4ea; }
.state-failed { color: #8f1317; background: #fde8e8; }
.state-replicating, .state-started { color: #0b4f94; background: #e8f0fb; }
.state-queued { color: #5a4500; background: #fff6d6; }
.bars { list-style: none; margin: .25rem 0 0; padding: 0; }
.bars li { display: flex; flex-wrap: wrap; align-items: center; gap: .1rem .5rem; }
.bar-name { min-width: 7rem; }
progress { width: 8rem; height: 1rem; accent-color: var(--accent); }
.pct { font-variant-numeric: tabular-nums; min-width: 3.5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
@media (max-width: 40rem) {
  header, main { padding: 0 .5rem; }
  th, td { padding: .3rem .35rem; }
  dl { grid-template-columns: 1fr; }
  dd { margin-bottom: .4rem; }
}
"""

#: Reloads the page every ``data-seconds`` unless paused; the pause is kept in localStorage.
_SCRIPT: Final = """
(function () {
  var button = document.getElementById("refresh-toggle");
  var status = document.getElementById("refresh-state");
  var seconds = Number(button.getAttribute("data-seconds")) || 10;
  var key = "gallery-pipeline-ui-paused";
  var timer = null;
  function paused() {
    try { return window.localStorage.getItem(key) === "1"; } catch (e) { return false; }
  }
  function show() {
    var off = paused();
    button.textContent = off ? "Resume auto-refresh" : "Pause auto-refresh";
    button.setAttribute("aria-pressed", off ? "true" : "false");
    status.textContent = off ? "Auto-refresh paused." : "Refreshes every " + seconds + " s.";
  }
  function arm() {
    window.clearTimeout(timer);
    if (paused()) { return; }
    timer = window.setTimeout(function () { location.reload(); }, seconds * 1000);
  }
  button.addEventListener("click", function () {
    try { window.localStorage.setItem(key, paused() ? "0" : "1"); } catch (e) {}
    show();
    arm();
  });
  button.hidden = false;
  show();
  arm();
})();
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


#: Only the page's own inline style and script run; nothing is loaded from anywhere.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; "
    f"style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _text(value: Any) -> str:
    """A value as safe HTML text: secrets masked, a URL's query (SAS) dropped, escaped."""
    if value is None:
        return ""
    text = str(value)
    if "://" in text and "?" in text:
        text = " ".join(strip_query(word) if "://" in word else word for word in text.split(" "))
    return html.escape(redact_secrets(text), quote=True)


def _percent(value: Any) -> int:
    """A progress value as a whole percentage in 0..100 (anything unreadable is 0)."""
    try:
        number = round(float(value))
    except (TypeError, ValueError):
        return 0
    return max(0, min(100, number))


def _time(value: Any) -> str:
    """An ISO timestamp as ``<time>``: shown to the second, the full value in ``datetime``."""
    if not value:
        return '<span class="empty">-</span>'
    text = str(value)
    shown = text[:19].replace("T", " ") + (" UTC" if text.endswith(("+00:00", "Z")) else "")
    return f'<time datetime="{_text(text)}">{_text(shown)}</time>'


def _state(value: Any) -> str:
    state = str(value or "unknown")
    css = "".join(c if c.isalnum() else "-" for c in state.lower())
    return f'<span class="state state-{_text(css)}">{_text(state)}</span>'


def _bar(name: str, percent: int, state: str = "") -> str:
    """One labelled progress bar: the name, the bar (``aria-label`` says it all), the figure."""
    label = f"{name}: {percent}% replicated" + (f" ({state})" if state else "")
    state_text = f' <span class="bar-state">{_text(state)}</span>' if state else ""
    return (
        f'<li data-region="{_text(name)}"><span class="bar-name">{_text(name)}</span>'
        f'<progress max="100" value="{percent}" aria-label="{_text(label)}">{percent}%</progress>'
        f'<span class="pct">{percent}%</span>{state_text}</li>'
    )


def _table(
    table_id: str,
    caption: str,
    headers: Sequence[str],
    rows: Iterable[str],
    empty: str,
) -> str:
    """A captioned table in a sideways-scrolling, keyboard-focusable region."""
    body = "".join(rows) or (
        f'<tr><td class="empty" colspan="{len(headers)}">{_text(empty)}</td></tr>'
    )
    head = "".join(f'<th scope="col">{_text(h)}</th>' for h in headers)
    return (
        f'<div class="scroll" role="region" tabindex="0" aria-labelledby="{table_id}-caption">'
        f'<table id="{table_id}"><caption id="{table_id}-caption">{_text(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _target(build: Mapping[str, Any]) -> str:
    target = build.get("target") or {}
    parts = [target.get("gallery"), target.get("definition"), target.get("version") or "(pending)"]
    return _text(" / ".join(str(p) for p in parts if p))


def _build_row(build: Mapping[str, Any]) -> str:
    build_id = build.get("buildId")
    regions = build.get("regions") or []
    overall = _percent(build.get("progress"))
    bars = [_bar("Overall", overall)] + [
        _bar(str(r.get("region") or "?"), _percent(r.get("progress")), str(r.get("state") or ""))
        for r in regions
    ]
    note = "" if regions else '<p class="empty">no region reported yet</p>'
    return (
        f'<tr data-build-id="{_text(build_id)}"><th scope="row"><code>{_text(build_id)}</code></th>'
        f"<td>{_state(build.get('state'))}</td>"
        f'<td><ul class="bars" aria-label="{_text(f"Replication of {build_id}")}">'
        f"{''.join(bars)}</ul>{note}</td>"
        f"<td>{_target(build)}</td><td>{_time(build.get('updatedAt'))}</td></tr>"
    )


def _parked_list(pending: Sequence[Mapping[str, Any]]) -> str:
    if not pending:
        return '<span class="empty">none</span>'
    items = "".join(
        f"<li><code>{_text(p.get('requestId'))}</code> since {_time(p.get('queuedAt'))}</li>"
        for p in pending
    )
    return f'<span class="count">{len(pending)}</span><ul class="bars">{items}</ul>'


def _source_row(source: Mapping[str, Any]) -> str:
    in_flight = source.get("inFlight")
    pending = source.get("pending") or []
    if in_flight:
        building = (
            f"<code>{_text(in_flight.get('buildId'))}</code> {_state(in_flight.get('state'))}"
            f" since {_time(in_flight.get('startedAt') or in_flight.get('claimedAt'))}"
        )
    else:
        building = '<span class="empty">idle</span>'
    return (
        f'<tr data-source-key="{_text(source.get("key"))}" data-parked="{len(pending)}">'
        f'<th scope="row"><code>{_text(source.get("sourceKey"))}</code></th>'
        f"<td>{building}</td><td>{_parked_list(pending)}</td></tr>"
    )


def _failed_row(build: Mapping[str, Any]) -> str:
    error = build.get("error") or {}
    return (
        f'<tr data-build-id="{_text(build.get("buildId"))}">'
        f'<th scope="row"><code>{_text(build.get("buildId"))}</code></th>'
        f"<td>{_target(build)}</td><td><code>{_text(error.get('reason') or '-')}</code></td>"
        f"<td>{_text(error.get('message') or '')}</td><td>{_time(build.get('updatedAt'))}</td></tr>"
    )


def _unavailable(page: Mapping[str, Any], section: str, what: str) -> str:
    reason = (page.get("unavailable") or {}).get(section)
    if not reason:
        return ""
    return f'<p class="warning" role="alert">Could not read {_text(what)}: {_text(reason)}</p>'


def _section(section_id: str, heading: str, content: str) -> str:
    return (
        f'<section id="{section_id}-section" aria-labelledby="{section_id}-heading">'
        f'<h2 id="{section_id}-heading">{_text(heading)}</h2>{content}</section>'
    )


def _builds_section(page: Mapping[str, Any]) -> str:
    builds = page.get("builds") or []
    table = _table(
        "builds",
        f"The {len(builds)} most recently updated builds, newest first",
        ("Build", "State", "Replication", "Gallery / definition / version", "Updated"),
        (_build_row(b) for b in builds),
        "No builds yet.",
    )
    return _section("builds", "Recent builds", _unavailable(page, "builds", "builds") + table)


def _sources_section(page: Mapping[str, Any]) -> str:
    sources = page.get("sources") or []
    table = _table(
        "sources",
        f"{len(sources)} sources with a build in flight or requests parked",
        ("Source", "Building now", "Parked requests"),
        (_source_row(s) for s in sources),
        "No source is busy: nothing in flight, nothing parked.",
    )
    content = _unavailable(page, "sources", "the ledger") + table
    return _section("sources", "Sources and parked requests", content)


def _failed_section(page: Mapping[str, Any]) -> str:
    failed = page.get("failed") or []
    note = (
        '<p class="note">Shown: the failed builds among the recent ones, from the build records. '
        "Requests rejected before becoming a build are dead-lettered in Service Bus, which this "
        "page does not read: list them with <code>galleryctl rejects</code>.</p>"
    )
    table = _table(
        "failed",
        f"{len(failed)} failed builds with their reasons",
        ("Build", "Gallery / definition / version", "Reason", "Message", "Updated"),
        (_failed_row(b) for b in failed),
        "No failed build among the recent ones.",
    )
    return _section("failed", "Recent rejects and failures", note + table)


def _lifecycle_section(page: Mapping[str, Any]) -> str:
    unavailable = _unavailable(page, "lifecycle", "the lifecycle audit store")
    run = page.get("lifecycle")
    if not run:
        empty = "" if unavailable else '<p class="empty">No lifecycle run recorded yet.</p>'
        return _section("lifecycle", "Last lifecycle plan", unavailable + empty)
    facts = (
        ("Run", f"<code>{_text(run.get('runId'))}</code>"),
        ("Status", _state(run.get("status"))),
        ("Planned at", _time(run.get("createdAt"))),
        ("Dry run", "yes" if run.get("dryRun") else "no"),
        ("Circuit breaker", "tripped" if run.get("circuitBreakerTripped") else "not tripped"),
        ("Done / failed", f"{_count(run.get('done'))} / {_count(run.get('failed'))}"),
    )
    listed = "".join(f"<dt>{_text(term)}</dt><dd>{value}</dd>" for term, value in facts)
    error = run.get("error")
    error_note = f'<p class="warning">The run failed: {_text(error)}</p>' if error else ""
    counts = run.get("counts") or []
    table = _table(
        "lifecycle",
        "The plan's entries by action and rule",
        ("Action", "Rule", "Versions"),
        (
            f'<tr data-action="{_text(c.get("action"))}" data-rule="{_text(c.get("rule"))}">'
            f'<th scope="row">{_text(c.get("action"))}</th><td>{_text(c.get("rule"))}</td>'
            f"<td>{_count(c.get('count'))}</td></tr>"
            for c in counts
        ),
        "The plan has no entries: nothing to deprecate, delete or hold back.",
    )
    facts_list = (
        f'<dl data-run-id="{_text(run.get("runId"))}" data-status="{_text(run.get("status"))}">'
        f"{listed}</dl>"
    )
    return _section("lifecycle", "Last lifecycle plan", facts_list + error_note + table)


def _count(value: Any) -> str:
    """A count as text (anything that is not a whole number shows as 0)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def render_status_page(page: Mapping[str, Any], *, generated_at: str) -> str:
    """The whole page for ``page`` (:func:`shared.builds.status.status_page_documents`)."""
    sections = "".join(
        (
            _builds_section(page),
            _sources_section(page),
            _failed_section(page),
            _lifecycle_section(page),
        )
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(TITLE)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{_text(TITLE)}</h1>"
        f'<p class="meta">Read at {_time(generated_at)}. '
        '<span id="refresh-state" role="status">Reload the page to refresh.</span> '
        f'<button id="refresh-toggle" type="button" data-seconds="{REFRESH_SECONDS}" hidden>'
        "Pause auto-refresh</button></p></header>"
        f"<main>{sections}</main><script>{_SCRIPT}</script></body></html>"
    )
