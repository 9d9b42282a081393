"""Voilà dashboard of the lockdown results (``dashboards/lockdown.ipynb``).

- :mod:`.data` reads and validates a results directory (no workflow import),
- :mod:`.figures` builds the plotly figures, :mod:`.tables` the HTML snippets,
- :mod:`.app` assembles the widgets the notebook displays.
"""
