"""Accuracy of the published changes against injected truth: the previous (day-pooled, daily
grid) estimator and the published one (common support of pixel-centre attributed cells) side by
side, over seeds and two modes.

For each mode and seed a synthetic archive over central Europe is generated (7 countries
reduced by 18-51 % from their own lockdown dates, 7 unchanged; the box holds all 14 whole),
gridded and attributed, and the statistics are computed by both estimators; the published
estimator also for the 26 hotspots of those countries (cities and industrial areas of the
shipped table, 12-90 km radius, on their country's windows; ``kind`` hotspot in the table),
whose truth is the noise-free mean over the hotspot's disc (``truth_daily.csv``) and whose
weather-adjusted truth is the reduction injected there. Printed: per change
and estimator the mean and maximum absolute error (percentage points) and the coverage of the
95 % intervals; per country the mean error (its sign shows border dilution: a reduced country
next to unchanged ones reads too small a reduction); with several ``--resolutions``, all of it
at each grid size.

Modes:
- ``constant``: a truth field constant in time (no season, no wind dispersion) and a sunnier
  lockdown spring (``cloud_shift`` 2020 = -0.6): every change's truth is the injected one, so
  any error is sampling bias or noise.
- ``noiseless``: ``constant`` without retrieval noise: what is left is the estimator's own
  error (cloud-sampling bias, border and coast dilution, pixel-size differences between the
  years); the difference to ``constant`` is the retrieval noise, the limit of the data.
- ``weather``: season and wind dispersion on, a windier lockdown year (``wind_scale`` 2020 =
  1.45, like 4.5 vs 6.5 m/s) and the sunnier spring: the raw changes' truth is the noise-free
  ratio of the true country means over the window days (``truth_daily.csv``), the weather-
  adjusted and low-wind changes' truth is the injected reduction. The raw changes' day
  bootstrap treats the window's days as a sample of the weather that could have happened, so
  their intervals also hold the weather's day-to-day variability, which the realised truth does
  not have (they over-cover it); they are also scored against the *expected* raw change, the
  mean of the realised truths of the other seeds (same windows and scenario, other weather):
  ``truth_kind`` ``realised`` and ``expected`` in the table.
- ``weather-plume``: ``weather`` with another dispersion law, one the weather adjustment's
  model (a power law of the wind) does not assume: one wind a day over the whole box, and only
  the plumes ventilated, as 1/speed (:mod:`s5p_lockdown.synth.field`).

Old estimator: each window's mean is Σ_d S_d / Σ_d A_d over its usable days (every cell-day
weighted by cos(lat) × fraction × its daily weight W), days resampled for the interval. New: the
published estimator on statistics cells of the first ``--cell-sizes`` (default the config's,
0.2°); further sizes are shown beside it as ``new@SIZE`` (e.g. ``--cell-sizes 0.2 0.1``: the
grid's own 0.1° cells). Plain: the reference estimator of the issue that asked for the new one
(pixel centres into 0.2° cells, each cell given to one country, per-cell window means, the
cos(lat) mean over the cells with data in both windows; point estimates only): how hard these
archives are, beside the published estimator.

Run: ``.venv/bin/python benchmarks/bench_accuracy.py --seeds 10`` (about a minute per seed and
mode on 2 cores at the default pixel size); ``--resolutions 0.05 0.1 0.2`` for the dilution table.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import zlib
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from s5p_lockdown.attribution import RegionSet, attribute_days
from s5p_lockdown.cells import block_shape, cell_tables
from s5p_lockdown.daily import grid_days
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.lockdowns import load_lockdown_dates
from s5p_lockdown.regions import country_fraction_masks, mask_entries, hotspot_countries, hotspot_masks, load_countries, load_hotspots
from s5p_lockdown.stats import GROUPS, StatsSettings, country_daily, country_statistics
from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings
from s5p_lockdown.synth.scenario import Scenario
from s5p_lockdown.windows import WindowSettings, country_windows, required_days

BOX = (43.0, 58.0, -2.0, 24.0)  # south, north, west, east (degrees)
REDUCED = {"DEU": 0.22, "CZE": 0.27, "ITA": 0.38, "FRA": 0.30, "POL": 0.18, "AUT": 0.51, "HUN": 0.35}
UNCHANGED = ("BEL", "GBR", "CHE", "NLD", "SVK", "HRV", "DNK")
CODES = tuple(REDUCED) + UNCHANGED
RAW = ("post_vs_baseline", "post_vs_pre", "adjusted")
WEATHER = ("weather_adjusted", "low_wind")
MODES = {
    "constant": dict(constant_truth=True, cloud_shift={2020: -0.6}),
    "noiseless": dict(constant_truth=True, cloud_shift={2020: -0.6}, noise=False),
    "weather": dict(wind_scale={2020: 1.45}, cloud_shift={2020: -0.6}),
    "weather-plume": dict(wind_scale={2020: 1.45}, cloud_shift={2020: -0.6}, dispersion_law="plume-inverse",
                          uniform_wind=True),
}


def scenario() -> Scenario:
    dates = load_lockdown_dates()
    table = pd.DataFrame({"reduction": [REDUCED.get(c, 0.0) for c in CODES],
                          "start": [dates.loc[c, "lockdown_start"] for c in CODES],
                          "end": pd.NaT}, index=pd.Index(CODES, name="iso3"))
    return Scenario(table)


def windows_of(pre_days: int, post_days: int) -> pd.DataFrame:
    dates = load_lockdown_dates().loc[list(CODES)]
    dates = dates.assign(measure="national", lockdown_end=pd.NaT)
    settings = WindowSettings(2020, (2019,), pre_days, post_days, date(2020, 3, 15), date(2020, 4, 4))
    return country_windows(dates, settings)


def old_statistics(daily: pd.DataFrame, windows: pd.DataFrame, settings: StatsSettings) -> pd.DataFrame:
    """The previous estimator (see the module docstring), for comparison only."""
    daily = daily.assign(date=pd.to_datetime(daily["date"]).dt.date)
    tail = (1 - settings.confidence) / 2
    rows = []
    for iso3, w in windows.groupby("iso3"):
        rng = np.random.default_rng([settings.seed, zlib.crc32(iso3.encode())])
        means, boots = {}, {}
        for period, role in GROUPS:
            days = set(required_days(w[(w["period"] == period) & (w["role"] == role)]))
            d = daily[(daily["iso3"] == iso3) & daily["date"].isin(days)]
            d = d[(d["sum_weight"] > 0) & (d["coverage"] >= settings.min_day_coverage)]
            s, a = d["sum_weighted_no2"].to_numpy(), d["sum_weight"].to_numpy()
            means[(period, role)] = s.sum() / a.sum() if len(d) >= settings.min_days else np.nan
            index = rng.integers(0, max(len(s), 1), (settings.bootstrap, len(s)))
            boots[(period, role)] = s[index].sum(1) / a[index].sum(1) if len(s) else np.full(settings.bootstrap, np.nan)
        row = {"iso3": iso3}
        for source, suffix in ((means, ""), (boots, "_boot")):
            pa, pb = source[("post", "analysis")], source[("post", "baseline")]
            qa, qb = source[("pre", "analysis")], source[("pre", "baseline")]
            row["post_vs_baseline" + suffix] = pa / pb - 1
            row["post_vs_pre" + suffix] = pa / qa - 1
            row["adjusted" + suffix] = (pa / qa) / (pb / qb) - 1
        for name in RAW:
            row[f"change_{name}"] = row[name]
            row[f"change_{name}_low"], row[f"change_{name}_high"] = np.nanquantile(row[name + "_boot"], [tail, 1 - tail])
        rows.append(row)
    return pd.DataFrame(rows)


def plain_statistics(tables: dict, masks, windows: pd.DataFrame) -> pd.DataFrame:
    """The issue's plain reference estimator, for comparison only: every pixel centre (of any of
    the benchmark's countries: the attribution holds no sea pixel) into 0.2° cells, each cell
    given to the country holding most of its area, the mean per cell and window, then the
    cos(lat) mean over the country's cells with data in both windows compared. No gridding, no
    fractions, no interval. ``tables``: :func:`cell_tables` on the grid's own cells."""
    codes = list(tables)
    n_lon = masks.sizes["longitude"]
    region, cell, fraction = mask_entries(masks)
    shape = block_shape(GridSpec.from_harp(masks.attrs["grid"]), 0.2)
    block = (cell // n_lon // shape[0]) * (n_lon // shape[1] + 1) + cell % n_lon // shape[1]
    blocks, at = np.unique(block, return_inverse=True)
    dates = tables[codes[0]].dates
    value, count = np.zeros((len(dates), blocks.size)), np.zeros((len(dates), blocks.size))
    share = np.zeros((len(codes), blocks.size))
    np.add.at(share, (region, at), fraction)
    cos_lat = np.cos(np.radians(masks["latitude"].values[cell // n_lon]))
    cos_lat = np.bincount(at, cos_lat, blocks.size) / np.bincount(at, minlength=blocks.size)  # mean
    for k, code in enumerate(codes):  # cell_tables keeps each region's cells in ascending order
        np.add.at(value.T, at[region == k], tables[code].weighted_value.T)
        np.add.at(count.T, at[region == k], tables[code].weight.T)
    owner = share.argmax(axis=0)
    rows = []
    for k, code in enumerate(codes):
        w = windows[windows["iso3"] == code]
        sums = {}
        for period, role in GROUPS:
            chosen = np.isin(dates, required_days(w[(w["period"] == period) & (w["role"] == role)]))
            sums[(period, role)] = (value[chosen][:, owner == k].sum(0), count[chosen][:, owner == k].sum(0))
        row = {"iso3": code}
        for name, (first, second) in (("post_vs_baseline", (("post", "analysis"), ("post", "baseline"))),
                                      ("post_vs_pre", (("post", "analysis"), ("pre", "analysis")))):
            (s1, n1), (s2, n2) = sums[first], sums[second]
            both = (n1 > 0) & (n2 > 0)
            weight = cos_lat[owner == k][both]
            row[f"change_{name}"] = (weight * s1[both] / n1[both]).sum() / (weight * s2[both] / n2[both]).sum() - 1
            row[f"change_{name}_low"] = row[f"change_{name}_high"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def hotspots_in_box() -> dict[str, str]:
    """Hotspot name -> its country, for the hotspots of the benchmark's countries whose centre
    lies in the box."""
    shapes = load_hotspots()
    return {name: iso3 for name, iso3 in hotspot_countries().items()
            if iso3 in CODES and BOX[0] <= shapes[name].geometry.centroid.y <= BOX[1]
            and BOX[2] <= shapes[name].geometry.centroid.x <= BOX[3]}


def hotspot_windows(windows: pd.DataFrame, hotspots: dict[str, str]) -> pd.DataFrame:
    """Each hotspot on its country's windows (``iso3`` = hotspot name), as the workflow does."""
    return pd.concat([windows[windows["iso3"] == iso3].assign(iso3=name, country=iso3)
                      for name, iso3 in hotspots.items()], ignore_index=True)


def truth_of(truth_daily: pd.DataFrame, windows: pd.DataFrame, mode: str, kind: str = "country") -> pd.DataFrame:
    truth = truth_daily[truth_daily["kind"] == kind].assign(date=lambda f: pd.to_datetime(f["date"]).dt.date)
    rows = []
    for iso3, w in windows.groupby("iso3"):
        m = {}
        mine = truth[truth["iso3"] == iso3]
        for period, role in GROUPS:
            days = set(required_days(w[(w["period"] == period) & (w["role"] == role)]))
            m[(period, role)] = mine[mine["date"].isin(days)]["no2_truth"].mean()
        pa, pb, qa, qb = (m[k] for k in (("post", "analysis"), ("post", "baseline"), ("pre", "analysis"), ("pre", "baseline")))
        if kind == "country":
            injected = -REDUCED.get(iso3, 0.0)
        else:  # a disc may straddle a border: the mean reduction injected over it
            post = set(required_days(w[(w["period"] == "post") & (w["role"] == "analysis")]))
            injected = pa / mine[mine["date"].isin(post)]["no2_no_lockdown"].mean() - 1
        raw_truth = {"post_vs_baseline": pa / pb - 1, "post_vs_pre": pa / qa - 1, "adjusted": (pa / qa) / (pb / qb) - 1}
        if mode in ("constant", "noiseless") and kind == "country":
            raw_truth = {k: injected for k in raw_truth}
        rows.append({"iso3": iso3, **raw_truth, "weather_adjusted": injected, "low_wind": injected})
    return pd.DataFrame(rows).set_index("iso3")


def run_seed(mode: str, seed: int, args, work: Path) -> list[dict]:
    folder = work / f"{mode}-{seed}"
    windows = windows_of(args.pre_days, args.post_days)
    days = required_days(windows)
    settings = SynthSettings(seed=seed, box=BOX, lat_band=(BOX[0] - 2, BOX[1] + 2),
                             across_track_step=args.steps[0], along_track_step=args.steps[1], **MODES[mode])
    started = time.perf_counter()
    if not (folder / "synth.json").exists():
        ArchiveGenerator(settings, scenario()).generate(folder, days)
    generated = time.perf_counter() - started
    files = {}
    for path in sorted(folder.glob("????/??/??/S5P_*.nc")):
        files.setdefault(date(*map(int, path.parts[-4:-1])), []).append(path)
    truth = truth_of(pd.read_csv(folder / "truth_daily.csv"), windows, mode)
    countries = load_countries()
    rows = []
    for resolution in args.resolutions:
        grid = GridSpec.from_bbox(*BOX, resolution)
        daily_dir = folder / f"daily-{resolution}"
        if not daily_dir.exists():
            grid_days(files, grid, daily_dir)
        paths = sorted(daily_dir.glob("*.nc"))
        masks = country_fraction_masks(grid, countries, CODES)
        stats_settings = StatsSettings(bootstrap=args.bootstrap, seed=seed)
        attribution = folder / f"attribution-{resolution}.nc"
        if not attribution.exists():
            attribute_days(files, {"countries": RegionSet(countries, masks)}, {"countries": attribution})
        daily = country_daily(paths, masks)
        estimates = {"old": old_statistics(daily, windows, stats_settings),
                     "plain": plain_statistics(cell_tables([attribution], masks, set(days)), masks, windows)}
        for size in args.cell_sizes:
            settings = replace(stats_settings, cell_size=size)
            name = "new" if size == args.cell_sizes[0] else f"new@{size:g}"
            estimates[name] = country_statistics(cell_tables([attribution], masks, set(days), size), windows,
                                                 settings, observed=daily)
        hotspots = hotspots_in_box()
        spots = hotspot_masks(grid).sel(country=list(hotspots))
        spot_attribution = folder / f"attribution-hotspots-{resolution}.nc"
        if not spot_attribution.exists():
            attribute_days(files, {"hotspots": RegionSet(load_hotspots(), spots, exclusive=False)},
                           {"hotspots": spot_attribution})
        spot_windows = hotspot_windows(windows, hotspots)
        spot_truth = truth_of(pd.read_csv(folder / "truth_daily.csv"), spot_windows, mode, kind="hotspot")
        spot_settings = replace(stats_settings, cell_size=args.cell_sizes[0])
        spot_stats = country_statistics(cell_tables([spot_attribution], spots, set(days), spot_settings.cell_size),
                                        spot_windows, spot_settings, observed=country_daily(paths, spots))
        for kind, estimator, frame, truths in (*(("country", e, f, truth) for e, f in estimates.items()),
                                                ("hotspot", "new", spot_stats, spot_truth)):
            for _, row in frame.iterrows():
                for name in RAW + WEATHER:
                    if f"change_{name}" not in row:
                        continue
                    t = truths.loc[row["iso3"], name]
                    rows.append({"mode": mode, "seed": seed, "resolution": resolution, "kind": kind,
                                 "estimator": estimator, "iso3": row["iso3"], "change": name,
                                 "truth": t, "estimate": row[f"change_{name}"],
                                 "error_pp": 100 * (row[f"change_{name}"] - t),
                                 "low": row[f"change_{name}_low"], "high": row[f"change_{name}_high"],
                                 "covered": (row[f"change_{name}_low"] <= t <= row[f"change_{name}_high"]
                                             if np.isfinite(row[f"change_{name}_low"]) else np.nan),
                                 "half_width_pp": 50 * (row[f"change_{name}_high"] - row[f"change_{name}_low"])})
    print(f"  {mode} seed {seed}: generated in {generated:.0f} s, total {time.perf_counter() - started:.0f} s",
          flush=True)
    return rows


def with_expected_truth(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` (``truth_kind`` "realised") plus, for the weather modes' raw changes, the same
    cases scored against the expected raw change: per country, change and estimator the mean of
    the realised truths of the *other* seeds (leave-one-out, so a case's own weather is not in
    its truth). Needs at least two seeds."""
    results = results.assign(truth_kind="realised")
    raw = results[results["mode"].str.startswith("weather") & results["change"].isin(RAW)]
    keys = ["mode", "resolution", "kind", "estimator", "iso3", "change"]
    total = raw.groupby(keys)["truth"].transform("sum")
    count = raw.groupby(keys)["truth"].transform("size")
    if raw.empty or count.min() < 2:
        return results
    truth = (total - raw["truth"]) / (count - 1)
    expected = raw.assign(truth=truth, truth_kind="expected", error_pp=100 * (raw["estimate"] - truth),
                          covered=((raw["low"] <= truth) & (truth <= raw["high"])).where(raw["low"].notna()))
    return pd.concat([results, expected], ignore_index=True)


def summarise(results: pd.DataFrame) -> None:
    pd.set_option("display.width", 160)
    results = with_expected_truth(results)
    not_computed = results[results["estimate"].isna()].groupby(
        ["resolution", "kind", "mode", "change", "truth_kind", "estimator"]).size()
    results = results[results["estimate"].notna()]  # a change with too little data is NaN, with its reason
    results = results.assign(covered=results["covered"].astype(float), abs_error=results["error_pp"].abs(),
                             z2=(results["error_pp"] / (results["half_width_pp"] / 1.96)) ** 2)
    summary = results.groupby(["resolution", "kind", "mode", "change", "truth_kind", "estimator"]).agg(
        mean_abs_pp=("abs_error", "mean"), max_abs_pp=("abs_error", "max"),
        over_1_5_pp=("abs_error", lambda e: int((e > 1.5).sum())),
        coverage=("covered", "mean"), median_half_width_pp=("half_width_pp", "median"),
        cases=("covered", "size"), rms_z=("z2", "mean"))
    summary["rms_z"] = np.sqrt(summary["rms_z"])
    per_archive = results.groupby(["resolution", "kind", "mode", "change", "truth_kind", "estimator", "seed"])["abs_error"].max()
    summary["archive_max_pp"] = per_archive.groupby(level=[0, 1, 2, 3, 4, 5]).median()
    summary["not_computed"] = not_computed.reindex(summary.index, fill_value=0)
    print("\nError of each change (percentage points) and 95 % interval coverage, all countries x seeds")
    print("(over_1_5_pp: cases off by more than 1.5 pp; rms_z: root mean square of the error in units")
    print(" of the standard error the interval implies, half-width / 1.96: 1 = intervals as wide as")
    print(" the errors; errors at the limit of the data have rms_z ~1 and shrink only with more data;")
    print(" archive_max_pp: the largest error over the countries of one archive, median over the seeds;")
    print(" not_computed: cases whose windows had too little data, left out of the other columns;")
    print(" truth_kind: see the module docstring)")
    print(summary.round(3).to_string())
    main = results[(results["resolution"] == results["resolution"].iloc[0])
                   & (results["truth_kind"] == "realised") & (results["kind"] == "country")]
    per_country = main.pivot_table(index=["mode", "change", "iso3"], columns="estimator",
                                   values="error_pp", aggfunc="mean")
    print("\nMean error per country (pp, signed), first resolution")
    print(per_country.round(2).to_string())
    spots = results[(results["resolution"] == results["resolution"].iloc[0]) & (results["kind"] == "hotspot")
                    & (results["truth_kind"] == "realised") & results["change"].isin(["post_vs_baseline", "post_vs_pre"])]
    if len(spots):
        print("\nMean error per hotspot (pp, signed), first resolution")
        print(spots.pivot_table(index="iso3", columns=["mode", "change"], values="error_pp", aggfunc="mean")
              .round(2).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--resolutions", nargs="+", type=float, default=[0.1])
    parser.add_argument("--steps", nargs=2, type=int, default=[3, 2],
                        help="across- and along-track aggregation of the synthetic pixels")
    parser.add_argument("--pre-days", type=int, default=10)
    parser.add_argument("--post-days", type=int, default=20)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--cell-sizes", nargs="+", type=float, default=[StatsSettings.cell_size],
                        help="statistics cell sizes (degrees): the first is 'new' (and the hotspots'), "
                             "the others 'new@SIZE' beside it")
    parser.add_argument("--workdir", type=Path, help="keep archives and grids here (reused)")
    parser.add_argument("--csv", type=Path, help="write every case to this CSV")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{args.seeds} seeds x modes {args.modes}; pixels {args.steps[0]}x{args.steps[1]} native; "
          f"grid {args.resolutions} degrees; box {BOX}; windows pre {args.pre_days} / post {args.post_days} days")
    rows = []
    try:
        for mode in args.modes:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                rows += run_seed(mode, seed, args, work)
    finally:
        if rows:
            results = pd.DataFrame(rows)
            if args.csv:
                results.to_csv(args.csv, index=False)
            summarise(results)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
