"""The run configuration: one frozen, typed object read from a TOML file with the standard library.

Every setting and its default is documented once, in the dataclass fields of `model`;
`docs/contract.md` and the README point there. Unknown keys and wrong types are errors that name
the key and the file, all of them at once, so a user fixes a config in one pass (`load`).
"""

from targeting.config.load import config_from_dict, load_config
from targeting.config.model import (
    DATE_ORDERS,
    DEFAULT_SAC_TYPES,
    DEFAULT_YIELDS,
    SMALL_AREA_FITS,
    TACTICS,
    AreasConfig,
    CensusTable,
    Config,
    CrimesConfig,
    DeprivationConfig,
    EmergingConfig,
    GeofencesConfig,
    GridConfig,
    HotspotsConfig,
    InputFiles,
    OriginsConfig,
    OutputConfig,
    PlanConfig,
    PopulationConfig,
    PrivacyConfig,
    RepresentationConfig,
    RunConfig,
    SchemesConfig,
    ScoringConfig,
    SegmentsConfig,
    StationsConfig,
    TacticsConfig,
)

__all__ = [
    "DATE_ORDERS",
    "DEFAULT_SAC_TYPES",
    "DEFAULT_YIELDS",
    "SMALL_AREA_FITS",
    "TACTICS",
    "AreasConfig",
    "CensusTable",
    "Config",
    "CrimesConfig",
    "DeprivationConfig",
    "EmergingConfig",
    "GeofencesConfig",
    "GridConfig",
    "HotspotsConfig",
    "InputFiles",
    "OriginsConfig",
    "OutputConfig",
    "PlanConfig",
    "PopulationConfig",
    "PrivacyConfig",
    "RepresentationConfig",
    "RunConfig",
    "SchemesConfig",
    "ScoringConfig",
    "SegmentsConfig",
    "StationsConfig",
    "TacticsConfig",
    "config_from_dict",
    "load_config",
]
