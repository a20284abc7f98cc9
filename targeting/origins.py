"""Origin labels: every way a census table, a form or an alert system writes an ethnic group, read
through one crosswalk onto the population's categories.

Two shipped tables (`reference_data/`, documented in its README) say everything the engine knows:

- `census_categories.csv`: the 2011 and 2021 census categories (the 18/19 detailed groups, the 5
  broad groups and the 8-category table's combined White group), each with the group that holds
  it (`parent`) and where it goes when a population table lacks it (`rolls_up_to`: Roma to Other
  White, as the 2011 census counted it; a detailed group to its broad group).
- `origin_crosswalk.csv`: every label the engine recognises (ORIGINS-style names, census wording
  of 2011 and 2021 at every level, bulk-file headers, short codes, form and police wording) and
  the census category it means. Labels match whatever their case, spacing and punctuation, and
  with the bulk-file decoration (`Ethnic group: `, `Ethnic group (20 categories): `,
  `; measures: Value`) removed.

The population's origin names are read through the crosswalk too: a census table's categories
get their standard names (so the short headers and the ONS bulk headers of one table give the same
outputs), a broad heading beside its own parts is a subtotal, and a name that is not an ethnic
group ("Does not apply") is not an origin. A sign-up label then maps, in order, to an identical
population category, to the user's `[origins] map`, or through the crosswalk to the population's
category for it, rolling up to a coarser category where the population has no finer one. Anything
else is unmapped, counted and explained; never silently dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import pandas as pd

from targeting.disclosure import protect_breakdown
from targeting.io import normalise_name
from targeting.reference import read_reference

UNKNOWN = "unknown"  # the crosswalk's category for a label that says the origin is not known
ORIGINS_SOURCE = "origins"
_BULK_PREFIX = re.compile(r"^\s*ethnic group(\s*\([^)]*\))?\s*:\s*", re.IGNORECASE)
_BULK_SUFFIX = re.compile(r";\s*measures:.*$", re.IGNORECASE)


def label_key(label: str) -> str:
    """How labels are compared: bulk-file decoration removed, `&` read as `and`, then lower
    case and letters and digits only (`Ethnic group: White: Irish` and `WHITE - IRISH` are one)."""
    text = _BULK_SUFFIX.sub("", str(label))
    text = _BULK_PREFIX.sub("", text)
    return normalise_name(text.replace("&", " and "))


@dataclass(frozen=True)
class Category:
    """A census category: its standard name, the group holding it, and where it rolls up to."""

    code: str
    name: str
    parent: str  # the category that holds it ("" for a broad group)
    rolls_up_to: str  # where it goes when a population lacks it ("" for a broad group)


@dataclass(frozen=True)
class Label:
    """One crosswalk row: a label as written and the census categories it can mean (the finer
    first; only a residual heading such as "Other" has two)."""

    label: str
    categories: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def origins_only(self) -> bool:
        """An ORIGINS-style name that is no census category's name (England, Polish)."""
        return self.sources == (ORIGINS_SOURCE,)


@cache
def read_categories() -> Mapping[str, Category]:
    """`census_categories.csv`, by category code."""
    table = read_reference("census_categories.csv")
    return {
        code: Category(code, name, parent, up)
        for code, name, parent, up in zip(
            table["category"], table["name"], table["parent"], table["rolls_up_to"], strict=True
        )
    }


@cache
def read_crosswalk() -> Mapping[str, Label]:
    """`origin_crosswalk.csv`, by `label_key` of the label."""
    table = read_reference("origin_crosswalk.csv")
    return {
        label_key(label): Label(label, tuple(cats.split("|")), tuple(sources.split("|")))
        for label, cats, sources in zip(
            table["label"], table["category"], table["source"], strict=True
        )
    }


def read_origin_taxonomy() -> pd.DataFrame:
    """The shipped taxonomy: `origin, group, description` (ORIGINS origins roll up into groups)."""
    return read_reference("origin_taxonomy.csv")


def is_unknown_label(label: str) -> bool:
    """An empty label or one that says the origin is not known ("Not Found", "Prefer not to
    say", "Not stated")."""
    key = label_key(label)
    entry = read_crosswalk().get(key)
    return key == "" or (entry is not None and entry.categories == (UNKNOWN,))


def _ancestors(code: str, link: str) -> list[str]:
    """The categories above `code` by `link` (`parent` or `rolls_up_to`), nearest first."""
    categories = read_categories()
    out: list[str] = []
    while code in categories and getattr(categories[code], link):
        code = getattr(categories[code], link)
        out.append(code)
    return out


@dataclass(frozen=True)
class PopulationCategories:
    """A population table's origin names as the crosswalk reads them."""

    renamed: Mapping[str, str]  # name in the file -> name the outputs use
    categories: Mapping[str, str]  # output name -> the census category it means (recognised)
    subtotals: tuple[str, ...]  # names in the file that add up others beside them
    not_origins: tuple[str, ...]  # names in the file that are not ethnic groups
    census: bool  # a census table: its recognised categories were given their standard names

    @property
    def origins(self) -> tuple[str, ...]:
        """The output names of the origins, in the file's order."""
        return tuple(self.renamed.values())

    @property
    def claims(self) -> dict[str, tuple[str, ...]]:
        """Census category -> every output name that means it."""
        out: dict[str, tuple[str, ...]] = {}
        for name, code in self.categories.items():
            out[code] = (*out.get(code, ()), name)
        return out

    @property
    def category_of(self) -> dict[str, str]:
        """Output name -> census category, for the categories only one name means (a sign-up
        label can go to those)."""
        return {names[0]: code for code, names in self.claims.items() if len(names) == 1}


def _read_name(key: str, others: Sequence[str | None]) -> str | None:
    """The category a population name means, given what the table's other names mean: a
    residual heading ("Other") is the finer category beside a sibling of it (Arab), else the
    broad one."""
    entry = read_crosswalk().get(key)
    if entry is None:
        return None
    if len(entry.categories) == 1:
        return entry.categories[0]
    fine, coarse = entry.categories[0], entry.categories[-1]
    parent = read_categories()[fine].parent
    siblings = {o for o in others if o is not None and read_categories()[o].parent == parent}
    return fine if siblings and fine not in siblings else coarse


def read_population_categories(names: Sequence[str]) -> PopulationCategories:
    """How a population table's origin names (columns of a wide table, values of a long one)
    read: standard names for a census table's categories, subtotals, names that are not origins.

    A table is read as a census table when none of its names is an ORIGINS-only name; then each
    recognised name is given its category's standard name, unless two names mean one category
    (both keep their names). A broad heading beside its own parts ("White" beside "White:
    Irish") is a subtotal; "Does not apply" is not an origin.
    """
    crosswalk = read_crosswalk()
    keys = [label_key(n) for n in names]
    plain = [
        crosswalk[k].categories[0] if k in crosswalk and len(crosswalk[k].categories) == 1 else None
        for k in keys
    ]
    read = [
        _read_name(k, plain[:i] + plain[i + 1 :]) for i, k in enumerate(keys)
    ]  # each name read against the others
    not_origins = tuple(n for n, c in zip(names, read, strict=True) if c == UNKNOWN)
    used = {c for c in read if c not in (None, UNKNOWN)}
    subtotals = tuple(
        n
        for n, c in zip(names, read, strict=True)
        if c not in (None, UNKNOWN) and any(c in _ancestors(o, "parent") for o in used)
    )
    census = any(c not in (None, UNKNOWN) for c in read) and not any(
        k in crosswalk and crosswalk[k].origins_only for k in keys
    )
    kept = [
        (n, c)
        for n, c in zip(names, read, strict=True)
        if n not in subtotals and n not in not_origins
    ]
    count = Counter(c for _, c in kept if c is not None)
    categories = read_categories()
    renamed = {
        n: categories[c].name if census and c is not None and count[c] == 1 else n for n, c in kept
    }
    if len(set(renamed.values())) < len(renamed):  # a standard name already taken: keep names
        renamed = {n: n for n, _ in kept}
    return PopulationCategories(
        renamed=renamed,
        categories={renamed[n]: c for n, c in kept if c is not None},
        subtotals=subtotals,
        not_origins=not_origins,
        census=census,
    )


@dataclass(frozen=True)
class LabelMapping:
    """Where one sign-up label went, and why."""

    label: str
    origin: str | None  # the population origin, or None (unknown or unmapped)
    how: str
    signups: int

    @property
    def unmapped(self) -> bool:
        return self.origin is None and self.how.startswith("unmapped")


@dataclass(frozen=True)
class OriginMapping:
    """How every sign-up label was read, with its sign-ups (all sign-ups read, deleted ones too)."""

    labels: tuple[LabelMapping, ...]  # most sign-ups first

    @property
    def to_population(self) -> dict[str, str]:
        """Label -> population origin, for the labels that mapped."""
        return {m.label: m.origin for m in self.labels if m.origin is not None}

    @property
    def unmapped(self) -> dict[str, int]:
        """Label -> sign-ups, for labels with no population category (most first)."""
        return {m.label: m.signups for m in self.labels if m.unmapped}

    @property
    def not_found(self) -> int:
        """Sign-ups whose label says the origin is not known (empty, "Not Found", "Not stated")."""
        return sum(m.signups for m in self.labels if m.origin is None and not m.unmapped)

    @property
    def known(self) -> int:
        """Sign-ups with a label that names an origin (mapped or not)."""
        return sum(m.signups for m in self.labels) - self.not_found

    @property
    def unmapped_share(self) -> float:
        """The share of sign-ups with a known origin whose label maps to no category."""
        return sum(self.unmapped.values()) / self.known if self.known else 0.0


def _how_crosswalk(entry: Label, category: str, landed: str) -> str:
    kind = "ORIGINS name" if ORIGINS_SOURCE in entry.sources else "census wording"
    if landed == category:
        return f"crosswalk ({kind})"
    name = read_categories()[category].name
    return f"crosswalk ({kind}), rolled up from {name}"


def _unmapped_reason(entry: Label | None, population: PopulationCategories) -> str:
    if entry is None:
        return "unmapped: not a label the crosswalk knows"
    categories = read_categories()
    code = entry.categories[0]
    for node in (code, *_ancestors(code, "rolls_up_to")):
        if len(population.claims.get(node, ())) > 1:
            listed = ", ".join(population.claims[node])
            return f"unmapped: {categories[node].name} could be any of {listed}"
    finer = sorted(
        {n for c, names in population.claims.items() if code in _ancestors(c, "parent")
         for n in names}
    )  # fmt: skip
    if finer:
        return f"unmapped: coarser than the population's categories ({', '.join(finer)})"
    return f"unmapped: the population has no {categories[code].name} category"


def resolve_origin(
    label: str, population: PopulationCategories, *, user_map: Mapping[str, str]
) -> tuple[str | None, str]:
    """The population origin a sign-up label maps to (None when unknown or unmapped), and how."""
    key = label_key(label)
    entry = read_crosswalk().get(key)
    if key == "" or (entry is not None and entry.categories == (UNKNOWN,)):
        return None, "unknown origin"
    by_key = {label_key(name): name for name in population.origins}
    if key in by_key:
        return by_key[key], "same name as a population category"
    if key in user_map:
        return user_map[key], "your [origins] map"
    if entry is not None:
        by_category = {c: n for n, c in population.category_of.items()}
        code = entry.categories[0]
        for node in (code, *_ancestors(code, "rolls_up_to")):
            if node in by_category:
                return by_category[node], _how_crosswalk(entry, code, node)
    return None, _unmapped_reason(entry, population)


def population_origin_of(target: str, population: PopulationCategories) -> str | None:
    """The population origin a user map's `population_origin` names: the name itself, the name
    whatever its case and punctuation, or any label of the same census category ("WhiteBrit"
    for "White British")."""
    if target in population.origins:
        return target
    key = label_key(target)
    by_key = {label_key(name): name for name in population.origins}
    if key in by_key:
        return by_key[key]
    entry = read_crosswalk().get(key)
    by_category = {c: n for n, c in population.category_of.items()}
    if entry is not None:
        return next((by_category[c] for c in entry.categories if c in by_category), None)
    return None


def map_origins(
    labels: pd.Series, population_origins: Sequence[str], *, user_map: Mapping[str, str] | None
) -> tuple[pd.Series, OriginMapping]:
    """Each sign-up label as a population origin (NA where unknown or unmapped), and how each
    distinct label was mapped. `user_map` is label -> population origin (already checked)."""
    population = read_population_categories(population_origins)
    clean = labels.fillna("").astype(str).str.strip()
    counts = clean.value_counts()
    user = {label_key(k): v for k, v in (user_map or {}).items()}
    found = {
        str(label): resolve_origin(str(label), population, user_map=user) for label in counts.index
    }
    mapped = clean.map({label: origin for label, (origin, _) in found.items()})
    table = tuple(
        sorted(
            (
                LabelMapping(str(label), found[str(label)][0], found[str(label)][1], int(n))
                for label, n in counts.items()
            ),
            key=lambda m: (-m.signups, m.label),
        )
    )
    return mapped, OriginMapping(table)


def label_table(mapping: OriginMapping, *, threshold: int) -> pd.DataFrame:
    """Where each sign-up label went, for the manifest and the report: `label, population_origin,
    how, signups`, most sign-ups first. Counts are disclosure-controlled: the labels that reach
    one destination (an origin, unknown, unmapped) are protected as parts of its total, so a
    withheld count ("<threshold") cannot be worked out from the others."""
    rows = pd.DataFrame(
        {
            "label": [m.label for m in mapping.labels],
            "population_origin": [m.origin for m in mapping.labels],
            "how": [m.how for m in mapping.labels],
            "signups": [m.signups for m in mapping.labels],
        }
    )
    destination = rows["population_origin"].fillna(
        rows["how"].where(rows["how"] == "unknown origin", "unmapped")
    )
    small = (rows["signups"] > 0) & (rows["signups"] < threshold)
    shown: dict[int, int | str] = dict(enumerate(rows["signups"].astype(int).tolist()))
    # only a destination with a small count has anything to withhold
    for _, group in rows[small.groupby(destination).transform("any")].groupby(destination):
        parts = protect_breakdown(
            {str(i): int(n) for i, n in group["signups"].items()}, threshold=threshold
        )
        shown.update({int(i): v for i, v in parts.items()})
    return rows.assign(
        population_origin=rows["population_origin"]
        .astype(object)
        .where(rows["population_origin"].notna(), None),
        signups=[shown[i] for i in rows.index],
    )


def origin_groups(origins: Sequence[str]) -> dict[str, str]:
    """The roll-up group of each population origin.

    A census table's categories roll up to their broad group (White, Mixed, Asian, Black, Other
    ethnic group); ORIGINS-style names use the shipped taxonomy (Pakistani and Bangladeshi in
    South Asian), and a census name among them its broad group; anything else is "Other".
    """
    taxonomy = read_origin_taxonomy()
    by_name = {label_key(o): g for o, g in zip(taxonomy["origin"], taxonomy["group"], strict=True)}
    population = read_population_categories(origins)
    categories = read_categories()
    out: dict[str, str] = {}
    for origin in origins:
        code = population.categories.get(origin)
        broad = categories[[code, *_ancestors(code, "parent")][-1]].name if code else None
        group = broad if population.census else by_name.get(label_key(origin)) or broad
        out[origin] = group or "Other"
    return out
