"""The demo city's fixed numbers and tables (reference_data/demo), and its config."""

from __future__ import annotations

import csv

import numpy as np

from targeting.reference import DEMO_DIR

_POP = 2_200_000  # residents of the synthetic city
_OA_RESIDENTS = 300
_SCALE = 1.5  # spread of the real ward centroids about their mean (268 -> ~600 km2)
_OUTLINE_BUFFER_M = 1_800.0  # convex hull of the spread centroids + this = the city
_N_SIGNUPS, _N_KNOWN = 53_408, 52_000
_ROLES = {"coordinator": 1_146, "deputy": 113, "member": 11_142}
_N_SCHEMES, _SCHEME_HOUSEHOLDS = 653, 203_256
_N_RATINGS = 30_000
_CRIMES_PER_MONTH = 25_000
_MONTHS = np.arange(np.datetime64("2017-11"), np.datetime64("2018-11")).astype(str)
_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))  # letters real postcode units use
_FORCE = "West Midlands Police"
CRIME_FOLDER = "crime"  # police.uk-style monthly files, one folder per month, under this

# The demo city's tables live in reference_data/demo (see its README): per ward, the real WD13
# code and name, the real 2013 centroid (lon, lat), a postcode district, synthetic scores (South
# Asian, Black, White British concentration 0-1, WMNow uptake factor, crime factor), its NPU and
# whether its message ratings run lower; per origin, residents, known-origin sign-ups (blank = the
# remainder) and affinity to the ward scores (South Asian, Black, White British, city centre).


def _read_rows(name: str) -> list[dict[str, str]]:
    with (DEMO_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


_WARD_ROWS = _read_rows("wards.csv")
_WARDS = tuple(
    (
        r["area_code"],
        r["area_name"],
        float(r["lon"]),
        float(r["lat"]),
        r["postcode_district"],
        *(float(r[k]) for k in ("south_asian", "black", "white_british", "uptake", "crime_factor")),
    )
    for r in _WARD_ROWS
)
_MINORITY_UPTAKE = np.array([float(r["minority_uptake"]) for r in _WARD_ROWS])
_NPUS: dict[str, tuple[str, ...]] = {}
for _row in _WARD_ROWS:
    _NPUS[_row["npu"]] = (*_NPUS.get(_row["npu"], ()), _row["area_name"])
_NPUS = dict(sorted(_NPUS.items()))
_LOW_RATING_WARDS = tuple(r["area_name"] for r in _WARD_ROWS if r["low_rating"] == "true")
_ORIGINS = {
    r["origin"]: (
        int(r["residents"]),
        int(r["signups"]) if r["signups"] else None,
        *(float(r[k]) for k in ("south_asian", "black", "white_british", "city_centre")),
    )
    for r in _read_rows("origins.csv")
}
# fmt: off
_CRIME_TYPES = {  # share of a WMP month, %
    "Anti-social behaviour": 24.0, "Violence and sexual offences": 16.0, "Burglary": 11.0,
    "Criminal damage and arson": 10.0, "Vehicle crime": 10.0, "Other theft": 9.0,
    "Shoplifting": 7.0, "Robbery": 3.0, "Drugs": 3.0, "Public order": 2.0,
    "Theft from the person": 1.6, "Other crime": 1.0, "Bicycle theft": 0.9,
    "Possession of weapons": 0.4,
}
_OUTCOMES = {
    "Investigation complete; no suspect identified": 34, "Unable to prosecute suspect": 25,
    "Status update unavailable": 10, "Awaiting court outcome": 5, "Court result unavailable": 5,
    "Local resolution": 5, "Offender given a caution": 3, "Offender sent to prison": 3,
    "Further investigation is not in the public interest": 3, "Offender given community sentence": 3,
    "Formal action is not in the public interest": 2, "Action to be taken by another organisation": 2,
}
_CRIME_HEADER = ("Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude",
                 "Location", "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context")
_PLACES = ("Supermarket", "Shopping Area", "Parking Area", "Petrol Station", "Nightclub", "Hospital",
           "Sports/Recreation Area", "Park/Open Space", "Further/Higher Educational Building")
_STREET_WORDS = ("Oak", "Ash", "Elm", "Birch", "Church", "Station", "Mill", "Park", "Victoria",
                 "Albert", "Stratford", "Coventry", "Warwick", "Chester", "Kingsbury", "Gravelly",
                 "Holly", "Rose", "Beech", "Cedar", "Willow", "Grange", "Manor", "Orchard", "Meadow",
                 "Hawthorn", "Chestnut", "Highfield", "Westfield", "Brook", "Green", "Hill", "Bristol",
                 "Pershore", "Alcester", "Lodge", "Stockfield", "Shirley", "Fox", "Heath")
_STREET_KINDS = ("Road", "Street", "Lane", "Avenue", "Close", "Grove", "Drive", "Way", "Crescent",
                 "Gardens", "Place", "Walk")
_NEIGHBOURS = ("Sandwell", "Solihull", "Walsall", "Dudley", "Bromsgrove", "Lichfield")
# fmt: on
_STREETS = np.array([f"{w} {k}" for w in _STREET_WORDS for k in _STREET_KINDS])
_ORIGIN_NAMES = np.array(list(_ORIGINS))
_SCORES = np.array([w[5:] for w in _WARDS])  # per ward: asian, black, english, uptake, crime
_ASIAN, _BLACK, _ENGLISH, _UPTAKE, _CRIME = range(5)
# message-rating distributions over 1..6: means ~5.46 and ~5.11 (overall ~5.44)
_RATING_P = np.array([0.015, 0.02, 0.03, 0.065, 0.165, 0.705])
_RATING_P_LOW = np.array([0.04, 0.04, 0.05, 0.09, 0.2, 0.58])

_CONFIG = """\
[inputs]
areas = "areas.geojson"
small_areas = "small_areas.gpkg"
population = "population.csv"
signups = "signups.csv"
postcodes = "postcodes.csv"
crimes = ["crime/*/*.csv"]
ratings = "ratings.csv"
schemes = "schemes.geojson"
segments = "segments.csv"                        # the open segmentation of the demo's census
segment_descriptions = "segment_descriptions.csv"
streets = "streets.gpkg"                           # synthetic named streets for the map
visited = "visited.csv"                            # the hotspots Tyburn's pilot knocked on

[grid]
resolution = 9

[run]
as_of = 2018-10-31

[output]
dir = "output"

[map]
title = "Demo city"

[history]
store = "history.duckdb"                           # the portal's history: each run adds itself
"""
# Tyburn's door-knocking pilot: from this day a share of the ward's sign-ups (those who would
# otherwise have joined before it) join during the pilot, so the history shows it improving
PILOT_AREA, PILOT_START, PILOT_SHARE = "Tyburn", "2018-05-01", 0.4
# the pilot knocks on this many of the ward's most populous cells, a few a week until this day
# (before the tasking list's cool-down, so this week's list is as it would be without them)
PILOT_CELLS, PILOT_END = 24, "2018-09-28"
HISTORY_MONTHS = 12  # the demo's history: its run and the month-ends before it
