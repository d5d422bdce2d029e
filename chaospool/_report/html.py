"""The self-contained HTML report: one file, inline CSS and inline SVG, nothing fetched.

Rendered from the journal alone (docs/reports.md), so ``chaospool report JOURNAL.json --html``
re-renders a run from its file. Every value from the journal is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from chaospool._journal import Check, FaultRecord, Journal, Metrics, as_journal
from chaospool._report._format import (
    PHASE_METRICS,
    PHASES,
    check_name,
    experiment_title,
    fault_label,
    fmt_metric,
    fmt_seconds,
    problems,
    reproduce_command,
    status_line,
)
from chaospool._report.charts import timeline_charts
from chaospool._report.files import write_text_atomic
from chaospool._report.happened import fmt_observed, happened_lines, stopped_note
from chaospool._report.heatmap import latency_heatmap
from chaospool._report.outcomes import outcomes_section

__all__ = ("render_html", "write_html")

_CSS = """
:root{--ok:#1e7d34;--bad:#c0262d;--warn:#b26b00;--ink:#1d2330;--muted:#5b6473;--line:#dde2ea}
*{box-sizing:border-box}
body{margin:0;background:#f4f6f9;color:var(--ink);
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:30px 0 10px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;
 margin-top:16px}
section>h2:first-child{margin-top:0}
.muted{color:var(--muted)}.small{font-size:13px}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:700;color:#fff;
 font-size:14px;vertical-align:middle;margin-right:6px}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;background:#fafbfc}
.card b{display:block;font-size:20px}.card span{color:var(--muted);font-size:13px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f7;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.records{width:auto;font-size:12px}
table.records th{background:#f6f8fa;font-weight:500}
table.records td,table.records th{padding:1px 5px}
section{overflow-x:auto}
tr.fail td{background:#fdeced}
.pass{color:var(--ok);font-weight:700}.fail-txt{color:var(--bad);font-weight:700}
code,pre{font:13px/1.4 ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace}
pre{background:#f0f3f7;border-radius:6px;padding:10px;overflow:auto;margin:0}
.cmd{background:#1d2330;color:#e8edf5;padding:10px 14px;border-radius:6px;display:block}
.chart svg{width:100%;height:auto;display:block}
.chart+.chart{margin-top:6px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:10px 0 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;word-break:break-all}
table.kv>tbody>tr>th{background:none;color:var(--muted);font-weight:500;width:1%;
 white-space:nowrap}
table.kv>tbody>tr>td,table.kv>tbody>tr>th{padding:2px 6px}
.problems{border:1px solid var(--bad);background:#fdeced;border-radius:6px;padding:8px 14px;
 margin:12px 0 0}.problems ul{margin:4px 0 0;padding-left:20px}
details summary{cursor:pointer;font-weight:600}
.stopped{border:1px solid var(--warn);background:#fff6e5;border-radius:6px;padding:6px 12px;
 margin:10px 0 0;font-weight:600;color:#7a4a00}
.happened{margin:12px 0 0}.happened ul{margin:4px 0 0;padding-left:20px}
.happened li.sub{list-style:circle;margin-left:18px}
.chart svg.heatmap{margin-top:8px}
"""

_CARDS = ("total", "success_rate", "recovered", "throughput", "p99_latency", "worker_restarts",
          "recovery_time")


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _badge(journal: Journal) -> str:
    status = journal.status
    verdict = '<span class="badge ok">PASSED</span>' if journal.ok else \
        '<span class="badge bad">FAILED</span>'
    tone = "ok" if status == "completed" else "warn" if status == "aborted" else "bad"
    return f'{verdict}<span class="badge {tone}">{_e(status)}</span>'


def _header(journal: Journal) -> str:
    exp = journal.experiment
    meta = [
        ("status", status_line(journal)),
        ("seed", journal.seed),
        ("started", journal.started_at),
        ("ended", journal.ended_at),
        ("experiment file", exp.path),
        ("sha256", exp.sha256),
        ("chaospool", journal.chaospool_version),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    stopped = stopped_note(journal)
    note = f'<p class="stopped">{_e(stopped)}</p>' if stopped else ""
    return (
        f"<header><h1>{_e(experiment_title(journal))}</h1>"
        f"<div>{_badge(journal)}</div>{note}{_problems(journal)}"
        f"{_happened(journal)}<dl class=\"meta\">{rows}</dl>{_reproduce(journal)}</header>"
    )


def _reproduce(journal: Journal) -> str:
    command = reproduce_command(journal)
    if command is None:  # a history records no seed: nothing to re-run
        return ""
    return f"<h2>Reproduce</h2><code class=\"cmd\">{_e(command)}</code>"


def _happened_item(line: str) -> str:
    if not line.startswith("  "):
        return f"<li>{_e(line)}</li>"
    # a fault: its label, then its one line of evidence
    label, _, evidence = line.strip().partition("\n")
    return f'<li class="sub">{_e(label)}<br><code>{_e(evidence.strip())}</code></li>'


def _happened(journal: Journal) -> str:
    items = "".join(_happened_item(line) for line in happened_lines(journal))
    return f'<div class="happened"><b>What happened</b><ul>{items}</ul></div>'


def _problems(journal: Journal) -> str:
    found = problems(journal)
    if not found:
        return ""
    items = "".join(f"<li>{_e(p)}</li>" for p in found)
    return f'<div class="problems"><b>What went wrong</b><ul>{items}</ul></div>'


def _cards(journal: Journal) -> str:
    metrics = journal.metrics
    cards = "".join(
        f'<div class="card"><b>{_e(fmt_metric(m, metrics.get(m)))}</b>'
        f"<span>{_e(m.replace('_', ' '))}</span></div>"
        for m in _CARDS
    )
    return f'<section><h2>Overall</h2><div class="cards">{cards}</div></section>'


def _checks(journal: Journal) -> str:
    checks = journal.checks
    if not checks:
        return "<section><h2>Checks</h2><p class=\"muted\">No steady-state checks.</p></section>"
    rows = []
    for c in checks:
        verdict = (
            '<span class="pass">✓ pass</span>' if c.ok else '<span class="fail-txt">✗ fail</span>'
        )
        rows.append(
            f'<tr class="{"ok" if c.ok else "fail"}"><td>{verdict}</td>'
            f"<td><code>{_e(check_name(c))}</code></td><td>{_e(c.phase)}</td>"
            f"<td class=\"num\">{_e(c.expected)}</td>"
            f"<td class=\"num\">{_e(_observed(c))}</td></tr>"
        )
    head = ("<tr><th>result</th><th>check</th><th>phase</th><th class=\"num\">expected</th>"
            "<th class=\"num\">observed</th></tr>")
    title = "Checks" if stopped_note(journal) is None else \
        "Checks <small>(evaluated on an incomplete run)</small>"
    return f"<section id=\"checks\"><h2>{title}</h2><table>{head}{''.join(rows)}</table></section>"


def _observed(check: Check) -> str:
    return fmt_observed(check.metric, check.expected, check.observed, check.ok)


def _charts(journal: Journal) -> str:
    svgs = [*timeline_charts(journal)]
    heat = latency_heatmap(journal)
    if heat is not None:
        svgs.append(heat)
    body = "".join(f'<div class="chart">{svg}</div>' for svg in svgs)
    note = ('<p class="muted small">Shaded bands are fault windows, from injection to revert '
            "(an instant fault such as a kill is drawn at a minimum width and marked "
            "<i>instant</i> in the legend). Each dot is one timeline bucket (hover for its "
            "values); markers along the bottom are the pool's own reactions: crashes, "
            "replacements, kills of stuck workers, the circuit breaker.</p>")
    return f'<section id="timeline"><h2>Timeline</h2>{note}{body}</section>'


def _phase_map(journal: Journal) -> dict[str, Metrics]:
    p = journal.phases
    return {"before": p.before, "during": p.during, "after": p.after, "overall": journal.metrics}


def _phases(journal: Journal) -> str:
    phases = _phase_map(journal)
    head = "<tr><th>metric</th>" + "".join(f'<th class="num">{p}</th>' for p in PHASES) + "</tr>"
    rows = [
        f"<tr><td>{_e(m)}</td>"
        + "".join(f'<td class="num">{_e(fmt_metric(m, phases[p].get(m)))}</td>' for p in PHASES)
        + "</tr>"
        for m in PHASE_METRICS
    ]
    kinds = sorted({k for p in PHASES for k in phases[p].errors_by_kind})
    rows += [
        f"<tr><td>errors: {_e(k)}</td>"
        + "".join(
            f'<td class="num">{_e(phases[p].errors_by_kind.get(k, 0))}</td>' for p in PHASES
        )
        + "</tr>"
        for k in kinds
    ]
    note = ('<p class="muted small">before: start → first injection · during: → last revert · '
            "after: → end. An operation belongs to the phase in which it started.</p>")
    return f"<section><h2>Phases</h2>{note}<table>{head}{''.join(rows)}</table></section>"


def _targets(fault: FaultRecord) -> str:
    if not fault.targets:
        return '<span class="muted">pool</span>'
    return "<br>".join(f"slot {_e(t.index)} · pid {_e(t.pid)}" for t in fault.targets)


def _cell(value: Any) -> str:
    return "null" if value is None else str(value)


def _records(rows: list[Any]) -> str | None:
    """A list of flat records (one per worker, say) as a small table; None if it is not one."""
    if not rows or not all(isinstance(r, Mapping) for r in rows):
        return None
    keys = list(dict.fromkeys(k for r in rows for k in r))
    if any(isinstance(v, Mapping | list) for r in rows for v in r.values()):
        return None
    # <wbr>: a long key (time_to_replacement) may wrap at its underscores, nowhere else.
    head = "".join(f"<th>{_e(k).replace('_', '_<wbr>')}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_cell(r.get(k)))}</td>" for k in keys) + "</tr>"
        for r in rows
    )
    return f'<table class="records"><tr>{head}</tr>{body}</table>'


def _effect_value(value: Any) -> str:
    if isinstance(value, list) and (table := _records(value)) is not None:
        return table
    if isinstance(value, Mapping | list):
        return f"<code>{_e(json.dumps(value, sort_keys=True, default=str))}</code>"
    return _e(value)


def _effect(effect: Any) -> str:
    """Evidence as a key/value table; nested values as one line of JSON each."""
    if not effect:
        return '<span class="muted">—</span>'
    if not isinstance(effect, Mapping):
        return f"<pre>{_e(json.dumps(effect, indent=2, default=str))}</pre>"
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_effect_value(v)}</td></tr>" for k, v in effect.items()
    )
    return f'<table class="kv">{rows}</table>'


def _fault_row(i: int, fault: FaultRecord) -> str:
    start, end = fault.injected_at, fault.reverted_at
    span = fmt_seconds(end - start) if start is not None and end is not None else "—"
    error = fault.error
    err = (
        f'<span class="fail-txt">{_e(error)}</span>' if error else '<span class="muted">none</span>'
    )
    return (
        f"<tr><td><b>{_e(fault_label(i, fault))}</b></td><td>{_targets(fault)}</td>"
        f'<td class="num">{_e(fmt_seconds(start))}</td><td class="num">{_e(fmt_seconds(end))}</td>'
        f'<td class="num">{_e(span)}</td><td>{err}</td><td>{_effect(fault.effect)}</td></tr>'
    )


def _faults(journal: Journal) -> str:
    faults = journal.faults
    if not faults:
        return "<section><h2>Faults</h2><p class=\"muted\">No fault was injected.</p></section>"
    head = ("<tr><th>fault</th><th>targets</th><th class=\"num\">injected at</th>"
            "<th class=\"num\">reverted at</th><th class=\"num\">lasted</th><th>error</th>"
            "<th>effect (evidence)</th></tr>")
    rows = "".join(_fault_row(i, f) for i, f in enumerate(faults))
    return f"<section><h2>Faults</h2><table>{head}{rows}</table></section>"


def _timeline_table(journal: Journal) -> str:
    head = ("<tr><th class=\"num\">t</th><th class=\"num\">succeeded</th><th class=\"num\">"
            "errors</th><th class=\"num\">recovered</th><th class=\"num\">p99</th>"
            "<th>faults active</th></tr>")
    rows = "".join(
        f'<tr><td class="num">{_e(fmt_seconds(b.t))}</td>'
        f'<td class="num">{_e(b.succeeded)}</td><td class="num">{_e(b.errors)}</td>'
        f'<td class="num">{_e(b.recovered)}</td>'
        f'<td class="num">{_e(fmt_seconds(b.p99_latency))}</td>'
        f"<td>{_e(', '.join(b.faults_active))}</td></tr>"
        for b in journal.timeline
    )
    journal_json = _e(json.dumps(journal.to_dict(), indent=2, default=str))
    return (
        "<section><h2>Data</h2><details><summary>Timeline buckets</summary>"
        f"<table>{head}{rows}</table></details>"
        f"<details><summary>Journal (JSON)</summary><pre>{journal_json}</pre></details></section>"
    )


def render_html(journal: Journal | Mapping[str, Any]) -> str:
    """Return the whole report as one HTML document (inline CSS and SVG only)."""
    journal = as_journal(journal)
    title = f"chaospool · {experiment_title(journal)}"
    body = "".join((_header(journal), _cards(journal), _checks(journal), _charts(journal),
                    outcomes_section(journal),
                    _phases(journal), _faults(journal), _timeline_table(journal)))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def write_html(journal: Journal | Mapping[str, Any], path: str | Path) -> None:
    """Write :func:`render_html` to ``path`` atomically (parent directories must exist)."""
    write_text_atomic(path, render_html(journal))
