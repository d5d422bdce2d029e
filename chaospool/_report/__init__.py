"""Reports rendered from the journal alone (docs/reports.md): HTML, JUnit XML, terminal.

``html.write_html``, ``junit.write_junit`` and ``terminal.render_summary`` each read the typed
journal of :mod:`chaospool._journal` (a JSON-able dict is converted first), so
``chaospool report JOURNAL.json`` re-renders a run from its file.
"""
