"""Reports rendered from the journal dict alone (docs/reports.md): HTML, JUnit XML, terminal.

``html.write_html``, ``junit.write_junit`` and ``terminal.render_summary`` each take the journal
dict, so ``chaospool report JOURNAL.json`` re-renders a run from its file.
"""
