"""Benchmark data sets for fair machine learning, and synthetic data with a controllable bias.

Real data (Adult, COMPAS, German credit, Communities and Crime, Law School) comes with the
preprocessing, sensitive attributes and splits used in the fairness literature. Raw files are read
from a data home folder (the ``data_home`` argument, else ``$FAIRJAX_DATA_HOME``, else the user
cache folder) and verified by sha256; Adult and German are also embedded in the package, so they
load offline. Every loader returns a :class:`Dataset` (of pandas objects with ``as_frame=True``).
"""

from fairjax.datasets._base import Dataset
from fairjax.datasets._drug import load_drug_consumption
from fairjax.datasets._loaders import (
    load_adult,
    load_communities_crime,
    load_compas,
    load_german,
    load_law_school,
)
from fairjax.datasets._registry import (
    DatasetChecksumError,
    DatasetNotFoundError,
    get_data_home,
)
from fairjax.datasets._synthetic import make_classification, make_regression

__all__ = [
    "Dataset",
    "DatasetChecksumError",
    "DatasetNotFoundError",
    "get_data_home",
    "load_adult",
    "load_communities_crime",
    "load_compas",
    "load_drug_consumption",
    "load_german",
    "load_law_school",
    "make_classification",
    "make_regression",
]
