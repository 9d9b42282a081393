#!/usr/bin/env python3
"""Build the shipped European country boundaries from Natural Earth 1:50m (maintainer tool).

Reads ``countries-50m.json`` (TopoJSON, Natural Earth 4.1.0 admin-0 countries, ISO 3166-1
numeric ids) straight out of the npm tarball of ``world-atlas@2.0.2``, decodes it (no node
needed), keeps every feature that intersects the clip box, clips it to the box and writes
``src/s5p_lockdown/resources/europe_countries_50m.geojson``: one MultiPolygon feature per country
with properties ``iso3``, ``iso2``, ``name`` and ``analysed`` (true iff the country has a row in
the lockdown-dates table). Coordinates are lon/lat degrees (WGS84), rounded to 1e-6 degree
(the source is quantized to about 0.002-0.004 degree, so nothing is lost), exterior rings
counter-clockwise as RFC 7946 asks.

Choices, which the provenance file repeats:

* Aland (a Finnish autonomous region that Natural Earth keeps apart) is merged into Finland.
* Northern Cyprus has no ISO code; it is kept apart as ``CYN`` (Natural Earth's ADM0_A3) with an
  empty ``iso2``. Kosovo has no numeric id either and gets ``XKX``/``XK`` as in the lockdown table.
* Crown dependencies (Jersey, Guernsey, Isle of Man) and the Faroe Islands stay separate
  territories, as in ISO 3166-1.
* Borders are Natural Earth's de-facto ones: Crimea is drawn as part of Russia.
* Rings that cross the antimeridian (world-atlas keeps them spherical) are unwrapped before
  clipping, which keeps European Russia intact.

Usage (from the repository root; npm is needed only to fetch the tarball)::

    tmp=$(mktemp -d) && (cd "$tmp" && npm pack world-atlas@2.0.2)
    python workflow/scripts/make_boundaries.py "$tmp/world-atlas-2.0.2.tgz"

The script checks the tarball's sha256, and checks the result: every analysed country present,
every geometry valid, no two countries overlapping (zero intersection area). The output is
byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import shapely

TARBALL_SHA256 = "032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97"
MEMBER = "package/countries-50m.json"
CLIP_BOX = (-32.0, 27.0, 50.0, 72.0)  # west, south, east, north (degrees)
DECIMALS = 6
REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "src/s5p_lockdown/resources/europe_countries_50m.geojson"
DEFAULT_DATES = REPO / "src/s5p_lockdown/resources/lockdown_dates.csv"

# Natural Earth feature (ISO 3166-1 numeric id, or name when it has no id) -> (iso3, iso2, name)
# for every feature that intersects CLIP_BOX. A feature in the box missing here stops the script.
CODES: dict[str, tuple[str, str, str]] = {
    "008": ("ALB", "AL", "Albania"),
    "012": ("DZA", "DZ", "Algeria"),
    "020": ("AND", "AD", "Andorra"),
    "031": ("AZE", "AZ", "Azerbaijan"),
    "040": ("AUT", "AT", "Austria"),
    "051": ("ARM", "AM", "Armenia"),
    "056": ("BEL", "BE", "Belgium"),
    "070": ("BIH", "BA", "Bosnia and Herzegovina"),
    "100": ("BGR", "BG", "Bulgaria"),
    "112": ("BLR", "BY", "Belarus"),
    "191": ("HRV", "HR", "Croatia"),
    "196": ("CYP", "CY", "Cyprus"),
    "203": ("CZE", "CZ", "Czechia"),
    "208": ("DNK", "DK", "Denmark"),
    "233": ("EST", "EE", "Estonia"),
    "234": ("FRO", "FO", "Faroe Islands"),
    "246": ("FIN", "FI", "Finland"),
    "248": ("FIN", "FI", "Finland"),  # Aland, merged into Finland
    "250": ("FRA", "FR", "France"),
    "268": ("GEO", "GE", "Georgia"),
    "275": ("PSE", "PS", "Palestine"),
    "276": ("DEU", "DE", "Germany"),
    "300": ("GRC", "GR", "Greece"),
    "304": ("GRL", "GL", "Greenland"),
    "336": ("VAT", "VA", "Vatican City"),
    "348": ("HUN", "HU", "Hungary"),
    "352": ("ISL", "IS", "Iceland"),
    "364": ("IRN", "IR", "Iran"),
    "368": ("IRQ", "IQ", "Iraq"),
    "372": ("IRL", "IE", "Ireland"),
    "376": ("ISR", "IL", "Israel"),
    "380": ("ITA", "IT", "Italy"),
    "398": ("KAZ", "KZ", "Kazakhstan"),
    "400": ("JOR", "JO", "Jordan"),
    "414": ("KWT", "KW", "Kuwait"),
    "422": ("LBN", "LB", "Lebanon"),
    "428": ("LVA", "LV", "Latvia"),
    "434": ("LBY", "LY", "Libya"),
    "438": ("LIE", "LI", "Liechtenstein"),
    "440": ("LTU", "LT", "Lithuania"),
    "442": ("LUX", "LU", "Luxembourg"),
    "470": ("MLT", "MT", "Malta"),
    "478": ("MRT", "MR", "Mauritania"),
    "492": ("MCO", "MC", "Monaco"),
    "498": ("MDA", "MD", "Moldova"),
    "499": ("MNE", "ME", "Montenegro"),
    "504": ("MAR", "MA", "Morocco"),
    "528": ("NLD", "NL", "Netherlands"),
    "578": ("NOR", "NO", "Norway"),
    "616": ("POL", "PL", "Poland"),
    "620": ("PRT", "PT", "Portugal"),
    "642": ("ROU", "RO", "Romania"),
    "643": ("RUS", "RU", "Russia"),
    "674": ("SMR", "SM", "San Marino"),
    "682": ("SAU", "SA", "Saudi Arabia"),
    "688": ("SRB", "RS", "Serbia"),
    "703": ("SVK", "SK", "Slovakia"),
    "705": ("SVN", "SI", "Slovenia"),
    "724": ("ESP", "ES", "Spain"),
    "732": ("ESH", "EH", "Western Sahara"),
    "752": ("SWE", "SE", "Sweden"),
    "756": ("CHE", "CH", "Switzerland"),
    "760": ("SYR", "SY", "Syria"),
    "788": ("TUN", "TN", "Tunisia"),
    "792": ("TUR", "TR", "Turkey"),
    "804": ("UKR", "UA", "Ukraine"),
    "807": ("MKD", "MK", "North Macedonia"),
    "818": ("EGY", "EG", "Egypt"),
    "826": ("GBR", "GB", "United Kingdom"),
    "831": ("GGY", "GG", "Guernsey"),
    "832": ("JEY", "JE", "Jersey"),
    "833": ("IMN", "IM", "Isle of Man"),
    "Kosovo": ("XKX", "XK", "Kosovo"),
    "N. Cyprus": ("CYN", "", "Northern Cyprus"),
}


def read_topology(tarball: Path) -> dict:
    """The TopoJSON document inside the world-atlas tarball, after checking the tarball's hash."""
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != TARBALL_SHA256:
        sys.exit(f"{tarball}: sha256 {digest} is not the expected {TARBALL_SHA256}")
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            sys.exit(f"{tarball}: no {MEMBER}")
        return json.load(member)


def decode_arcs(topology: dict) -> list[np.ndarray]:
    """Absolute lon/lat coordinates of every arc (TopoJSON arcs are delta-encoded, quantized)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        q = np.cumsum(np.asarray(arc, dtype=np.int64), axis=0)
        arcs.append(np.column_stack([q[:, 0] * sx + tx, q[:, 1] * sy + ty]))
    return arcs


def ring(arcs: list[np.ndarray], indices: list[int]) -> np.ndarray:
    """Stitch arcs into a ring; index ``~i`` means arc ``i`` reversed. Consecutive arcs share
    their joining point, which is kept once.

    world-atlas rings are spherical: a ring crossing the antimeridian (Russia's Chukotka,
    Wrangel Island) jumps from +180 to -180. Longitudes are unwrapped so the ring stays planar,
    running past 180 (the caller clips it with copies shifted by 360 degrees).
    """
    parts = []
    for k, i in enumerate(indices):
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        parts.append(arc if k == 0 else arc[1:])
    xy = np.vstack(parts)
    turns = np.round(np.diff(xy[:, 0]) / 360.0)
    xy[1:, 0] -= 360.0 * np.cumsum(turns)
    return xy


def decode_geometry(arcs: list[np.ndarray], geometry: dict) -> shapely.MultiPolygon:
    polygons = [geometry["arcs"]] if geometry["type"] == "Polygon" else geometry["arcs"]
    return shapely.MultiPolygon(
        [shapely.Polygon(ring(arcs, p[0]), [ring(arcs, h) for h in p[1:]]) for p in polygons]
    )


def polygonal(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    """The polygons of ``geometry`` (clipping can leave points and lines on the box edges)."""
    parts = shapely.get_parts(geometry)
    return shapely.MultiPolygon(
        [p for p in parts if isinstance(p, shapely.Polygon) and not p.is_empty]
    )


def clipped(geometry: shapely.Geometry, clip: shapely.Polygon) -> shapely.MultiPolygon:
    """The polygons of ``geometry`` inside ``clip``, also taking ``geometry`` shifted by 360
    degrees east and west (unwrapped rings may run past +-180)."""
    pieces = []
    for shift in (-360.0, 0.0, 360.0):
        moved = shapely.transform(geometry, lambda xy, s=shift: xy + (s, 0.0))
        if shapely.envelope(moved).intersects(clip):
            if not moved.is_valid:
                sys.exit(f"invalid source geometry: {shapely.is_valid_reason(moved)}")
            pieces.append(shapely.intersection(moved, clip))
    return polygonal(shapely.union_all(pieces))


def build(topology: dict, analysed: set[str]) -> list[dict]:
    arcs = decode_arcs(topology)
    clip = shapely.box(*CLIP_BOX)
    merged: dict[str, list[shapely.Geometry]] = {}
    names: dict[str, tuple[str, str]] = {}
    for feature in topology["objects"]["countries"]["geometries"]:
        geometry = clipped(decode_geometry(arcs, feature), clip)
        if geometry.is_empty:
            continue
        key = feature.get("id") or feature["properties"]["name"]
        if key not in CODES:
            sys.exit(f"feature {key!r} ({feature['properties']['name']}) lies in the clip box "
                     "but has no entry in CODES")
        iso3, iso2, name = CODES[key]
        merged.setdefault(iso3, []).append(geometry)
        names[iso3] = (iso2, name)

    features = []
    for iso3 in sorted(merged):
        geometry = polygonal(shapely.union_all(merged[iso3]))  # merges Aland into Finland
        geometry = shapely.transform(geometry, lambda xy: np.round(xy, DECIMALS))
        geometry = shapely.orient_polygons(geometry, exterior_cw=False)
        if not geometry.is_valid:
            sys.exit(f"{iso3}: invalid after rounding: {shapely.is_valid_reason(geometry)}")
        iso2, name = names[iso3]
        features.append({
            "type": "Feature",
            "properties": {"iso3": iso3, "iso2": iso2, "name": name, "analysed": iso3 in analysed},
            "geometry": shapely.geometry.mapping(geometry),
        })
    return features


def check(features: list[dict], analysed: set[str]) -> None:
    present = {f["properties"]["iso3"] for f in features}
    if missing := analysed - present:
        sys.exit(f"analysed countries missing from the boundaries: {sorted(missing)}")
    geometries = [shapely.geometry.shape(f["geometry"]) for f in features]
    tree = shapely.STRtree(geometries)
    for i, j in zip(*tree.query(geometries, predicate="intersects")):
        if i < j:
            overlap = shapely.intersection(geometries[i], geometries[j]).area
            if overlap > 0:
                a, b = features[i]["properties"]["iso3"], features[j]["properties"]["iso3"]
                sys.exit(f"{a} and {b} overlap by {overlap:.3g} square degrees")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tarball", type=Path, help="world-atlas-2.0.2.tgz from `npm pack`")
    parser.add_argument("--lockdown-dates", type=Path, default=DEFAULT_DATES,
                        help="CSV with an iso3 column; its countries get analysed=true")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    with open(args.lockdown_dates, newline="", encoding="utf-8") as f:
        analysed = {row["iso3"] for row in csv.DictReader(f)}
    features = build(read_topology(args.tarball), analysed)
    check(features, analysed)
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    with open(args.output, "w", encoding="utf-8") as f:  # one feature per line: readable diffs
        f.write('{"type":"FeatureCollection","name":"europe_countries_50m","features":[\n')
        f.write(",\n".join(lines))
        f.write("\n]}\n")
    size = args.output.stat().st_size
    print(f"wrote {args.output}: {len(features)} countries, {size / 1e6:.2f} MB, sha256 "
          f"{hashlib.sha256(args.output.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
