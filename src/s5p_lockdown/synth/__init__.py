"""Synthetic Sentinel-5P L2 NO2 orbits in the real file structure, with known truth.

- :mod:`~s5p_lockdown.synth.orbit` – orbit and pixel geometry.
- :mod:`~s5p_lockdown.synth.field` – the true NO2, wind and cloud fields.
- :mod:`~s5p_lockdown.synth.scenario` – injected lockdown reductions.
- :mod:`~s5p_lockdown.synth.writer` – writing a file like a real product.
- :mod:`~s5p_lockdown.synth.archive` – whole archives with truth tables.
"""
