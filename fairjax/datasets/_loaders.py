"""Loaders for the classic fairness benchmarks, with the literature's preprocessing.

Parsing uses the standard library and NumPy only (no pandas): the files are small.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from fairjax.datasets._base import (
    Column,
    Dataset,
    check_bool,
    check_choice,
    check_seed,
    check_test_size,
    make_dataset,
    stratified_split,
)
from fairjax.datasets._registry import read_raw

PathLike = str | os.PathLike[str]


class _Options(NamedTuple):
    """The checked options shared by the loaders that draw a seeded split."""

    include_sensitive: bool
    test_size: float
    seed: int
    download: bool
    as_frame: bool


def _check_options(
    include_sensitive: object, test_size: object, seed: object, download: object, as_frame: object
) -> _Options:
    return _Options(
        check_bool(include_sensitive, "include_sensitive"),
        check_test_size(test_size),
        check_seed(seed),
        check_bool(download, "download"),
        check_bool(as_frame, "as_frame"),
    )


def _read(path: str, loader: str, data_home: PathLike | None, download: bool) -> bytes:
    return read_raw(path, data_home=data_home, download=download, loader=loader)


def _csv(data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    """The header of a UTF-8 CSV file and a reader of its remaining rows."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    return next(reader), reader


def _table(data: bytes, sep: str | None) -> np.ndarray:
    """The non-blank lines of an ASCII file split at ``sep`` (white space for ``None``)."""
    return np.array([line.split(sep) for line in data.decode("ascii").splitlines() if line.strip()])


def _typed_columns(
    table: np.ndarray, spec: tuple[tuple[str, str], ...], drop: str | None
) -> list[Column]:
    """One :class:`Column` per ``(name, kind)`` of ``spec`` (the table's columns), but ``drop``."""
    return [
        Column(name, kind, table[:, j].astype(np.float64) if kind == "numeric" else table[:, j])
        for j, (name, kind) in enumerate(spec)
        if name != drop
    ]


# ----------------------------------------------------------------------------- Adult

_ADULT_COLUMNS = (
    ("age", "numeric"),
    ("workclass", "categorical"),
    ("fnlwgt", "numeric"),
    ("education", "categorical"),
    ("education-num", "numeric"),
    ("marital-status", "categorical"),
    ("occupation", "categorical"),
    ("relationship", "categorical"),
    ("race", "categorical"),
    ("sex", "categorical"),
    ("capital-gain", "numeric"),
    ("capital-loss", "numeric"),
    ("hours-per-week", "numeric"),
    ("native-country", "categorical"),
)


def _parse_adult(data: bytes) -> list[list[str]]:
    rows = []
    for line in data.decode("ascii").splitlines():
        if not line.strip() or line.startswith("|"):  # blank lines, the "|1x3 ..." header
            continue
        fields = [f.strip() for f in line.split(",")]
        if "?" in fields:
            continue
        fields[-1] = fields[-1].rstrip(".")  # adult.test writes "<=50K." and ">50K."
        rows.append(fields)
    return rows


def load_adult(
    *,
    include_sensitive: bool = True,
    data_home: PathLike | None = None,
    download: bool = False,
    as_frame: bool = False,
) -> Dataset:
    """UCI Adult (Census Income): predict income > 50K, with sex as the sensitive attribute.

    Source: ``adult.data`` (train) and ``adult.test`` (test), the standard split of the UCI
    archive. They are read from the data home when present, else from the copies embedded in
    fairjax (CC BY 4.0); the sha256 of the bytes is checked either way.

    Preprocessing:

    - the first line of ``adult.test`` (``|1x3 Cross validator``) and blank lines are skipped,
      the trailing ``.`` of its labels is removed;
    - rows with a missing value (``?``) are dropped: 30,162 train and 15,060 test rows remain;
    - target ``y = 1`` for ``>50K``, ``0`` for ``<=50K``;
    - groups: ``sex``, ``Female`` = 0 and ``Male`` = 1;
    - the 6 numeric columns (age, fnlwgt, education-num, capital-gain, capital-loss,
      hours-per-week) are standardised with the training mean and standard deviation; the 8
      categorical columns are one-hot encoded with the levels present in the files (104
      features with ``sex``, 102 without).

    Args:
        include_sensitive: keep the two ``sex=...`` indicator columns in ``X``. The default
            (kept) follows the code of the FERM paper (Donini et al., 2018); pass ``False`` for
            a model that does not see the attribute directly (proxies such as ``relationship``
            remain).
        data_home: folder holding ``adult/adult.data`` and ``adult/adult.test``; default: the
            ``FAIRJAX_DATA_HOME`` environment variable, else the user cache folder.
        download: fetch the files from the UCI archive when they are neither in the data home nor
            embedded (the embedded copies make this unnecessary in a normal install).
        as_frame: pandas objects instead of arrays, named columns (see :class:`Dataset`).

    Returns:
        A :class:`Dataset` with ``task="classification"``.

    Example:
        >>> from fairjax.datasets import load_adult
        >>> data = load_adult()
        >>> data.X_train.shape, data.X_test.shape
        ((30162, 104), (15060, 104))
        >>> data.group_names
        ('Female', 'Male')

    References:
        Kohavi, R. and Becker, B. (1996). Adult [Dataset]. UCI Machine Learning Repository.
        https://doi.org/10.24432/C5XW20

        Kohavi, R. (1996). Scaling up the accuracy of naive-Bayes classifiers: a decision-tree
        hybrid. KDD.
    """
    include_sensitive = check_bool(include_sensitive, "include_sensitive")
    download = check_bool(download, "download")
    as_frame = check_bool(as_frame, "as_frame")
    train = _parse_adult(_read("adult/adult.data", "load_adult", data_home, download))
    test = _parse_adult(_read("adult/adult.test", "load_adult", data_home, download))
    table = np.array(train + test, dtype=str)
    train_idx = np.arange(len(train))
    test_idx = np.arange(len(train), len(train) + len(test))
    y = (table[:, -1] == ">50K").astype(np.int32)
    sex_col = [name for name, _ in _ADULT_COLUMNS].index("sex")
    groups = (table[:, sex_col] == "Male").astype(np.int32)
    return make_dataset(
        _typed_columns(table, _ADULT_COLUMNS, drop=None if include_sensitive else "sex"),
        y,
        groups,
        (train_idx, test_idx),
        group_names=("Female", "Male"),
        target_name="income >50K",
        sensitive_name="sex",
        task="classification",
        description=(
            "UCI Adult: adult.data as train, adult.test as test, rows with '?' dropped; "
            "numeric columns standardised with train statistics, categoricals one-hot."
        ),
        as_frame=as_frame,
    )


# ----------------------------------------------------------------------------- COMPAS

_COMPAS_RACES = ("African-American", "Caucasian")
_COMPAS_WARNING = (
    "COMPAS labels (two_year_recid) record re-arrest, not re-offence, and the data set's use as "
    "a fairness benchmark is contested (Bao et al., 2021); see the load_compas docstring."
)


def load_compas(
    *,
    include_sensitive: bool = True,
    test_size: float = 0.3,
    seed: int = 0,
    data_home: PathLike | None = None,
    download: bool = False,
    as_frame: bool = False,
) -> Dataset:
    """ProPublica COMPAS: predict two-year recidivism, with race as the sensitive attribute.

    Source: ``compas-scores-two-years.csv`` of ProPublica's ``compas-analysis`` repository
    (commit ``bafff5d``, the one AIF360 pins), read from the data home only. Every call emits a
    ``UserWarning`` about the labels.

    Preprocessing (ProPublica's filtering, then AIF360's features):

    - keep rows with ``-30 <= days_b_screening_arrest <= 30`` (a missing value is dropped),
      ``is_recid != -1``, ``c_charge_degree != "O"`` and ``score_text != "N/A"`` (6,172 rows);
    - keep ``race`` in {African-American, Caucasian} (5,278 rows);
    - target ``y = two_year_recid`` (1 = re-arrested within two years);
    - groups: ``race``, ``African-American`` = 0 and ``Caucasian`` = 1;
    - features: ``sex``, ``age_cat``, ``race`` (if ``include_sensitive``) and
      ``c_charge_degree`` one-hot; ``priors_count``, ``juv_fel_count``, ``juv_misd_count``,
      ``juv_other_count`` standardised with train statistics (13 features with race, 11
      without). Names, dates of birth and other identifying fields are never read into ``X``;
    - a seeded split, stratified by (group, label).

    Caveats: the label is a re-arrest, which depends on policing; COMPAS scores were assessed
    for one county; the benchmark's use for fairness research is criticised in Bao et al.
    (2021). Treat results on it as a sanity check, not evidence about criminal justice.

    Args:
        include_sensitive: keep the ``race=...`` indicator columns in ``X`` (default kept).
        test_size: fraction of rows in the test part, in ``(0, 1)``.
        seed: seed of the NumPy generator that draws the split.
        data_home: folder holding ``compas/compas-scores-two-years.csv``; default: the
            ``FAIRJAX_DATA_HOME`` environment variable, else the user cache folder.
        download: fetch the file from ProPublica's GitHub repository when it is missing.
        as_frame: pandas objects instead of arrays, named columns (see :class:`Dataset`).

    Returns:
        A :class:`Dataset` with ``task="classification"``.

    Example:
        >>> from fairjax.datasets import load_compas
        >>> data = load_compas()  # doctest: +SKIP
        >>> data.group_names  # doctest: +SKIP
        ('African-American', 'Caucasian')

    References:
        Angwin, J., Larson, J., Mattu, S. and Kirchner, L. (2016). Machine Bias. ProPublica.
        https://github.com/propublica/compas-analysis

        Bao, M. et al. (2021). It's COMPASlicated: The Messy Relationship between RAI Datasets
        and Algorithmic Fairness Benchmarks. NeurIPS Datasets and Benchmarks.
    """
    opt = _check_options(include_sensitive, test_size, seed, download, as_frame)
    warnings.warn(_COMPAS_WARNING, UserWarning, stacklevel=2)
    data = _read("compas/compas-scores-two-years.csv", "load_compas", data_home, opt.download)
    header, reader = _csv(data)
    # The header repeats decile_score and priors_count; list.index takes the first occurrence.
    wanted = (
        "days_b_screening_arrest",
        "is_recid",
        "c_charge_degree",
        "score_text",
        "race",
        "sex",
        "age_cat",
        "priors_count",
        "juv_fel_count",
        "juv_misd_count",
        "juv_other_count",
        "two_year_recid",
    )
    pos = {name: header.index(name) for name in wanted}
    kept = []
    for row in reader:  # only the wanted fields are kept; no raw row is stored or printed
        if not row:
            continue
        days = row[pos["days_b_screening_arrest"]]
        if not days or not -30 <= float(days) <= 30:
            continue
        if int(row[pos["is_recid"]]) == -1 or row[pos["c_charge_degree"]] == "O":
            continue
        if row[pos["score_text"]] == "N/A" or row[pos["race"]] not in _COMPAS_RACES:
            continue
        kept.append([row[pos[name]] for name in wanted])
    table = np.array(kept, dtype=str)
    col = {name: j for j, name in enumerate(wanted)}
    y = table[:, col["two_year_recid"]].astype(np.int32)
    groups = (table[:, col["race"]] == "Caucasian").astype(np.int32)
    split = stratified_split(2 * groups + y, test_size=opt.test_size, seed=opt.seed)

    def numeric(name: str) -> Column:
        return Column(name, "numeric", table[:, col[name]].astype(np.float64))

    columns = [
        Column("sex", "categorical", table[:, col["sex"]]),
        Column("age_cat", "categorical", table[:, col["age_cat"]]),
        *([Column("race", "categorical", table[:, col["race"]])] if opt.include_sensitive else []),
        numeric("priors_count"),
        Column("c_charge_degree", "categorical", table[:, col["c_charge_degree"]]),
        numeric("juv_fel_count"),
        numeric("juv_misd_count"),
        numeric("juv_other_count"),
    ]
    return make_dataset(
        columns,
        y,
        groups,
        split,
        as_frame=opt.as_frame,
        group_names=_COMPAS_RACES,
        target_name="two_year_recid",
        sensitive_name="race",
        task="classification",
        description=(
            "ProPublica COMPAS two-year recidivism, ProPublica's filtering, African-American "
            "and Caucasian defendants; seeded split stratified by group and label."
        ),
    )


# ----------------------------------------------------------------------------- German credit

# Attribute names after german.doc; (name, kind) in file order; the 21st field is the label.
_GERMAN_COLUMNS = (
    ("checking_status", "categorical"),
    ("duration", "numeric"),
    ("credit_history", "categorical"),
    ("purpose", "categorical"),
    ("credit_amount", "numeric"),
    ("savings", "categorical"),
    ("employment_since", "categorical"),
    ("installment_rate", "numeric"),
    ("personal_status_sex", "categorical"),
    ("other_debtors", "categorical"),
    ("residence_since", "numeric"),
    ("property", "categorical"),
    ("age", "numeric"),
    ("other_installment_plans", "categorical"),
    ("housing", "categorical"),
    ("existing_credits", "numeric"),
    ("job", "categorical"),
    ("num_dependents", "numeric"),
    ("telephone", "categorical"),
    ("foreign_worker", "categorical"),
)
_GERMAN_FEMALE = ("A92", "A95")  # personal status codes that describe a woman


def load_german(
    *,
    sensitive: str = "age",
    include_sensitive: bool = True,
    test_size: float = 0.3,
    seed: int = 0,
    data_home: PathLike | None = None,
    download: bool = False,
    as_frame: bool = False,
) -> Dataset:
    """UCI Statlog German Credit: predict good credit, with age or sex as sensitive attribute.

    Source: ``german.data`` (1,000 rows, 20 attributes) from the data home when present, else the
    copy embedded in fairjax (CC BY 4.0); the sha256 of the bytes is checked either way.

    Preprocessing:

    - target ``y = 1`` for good credit (file label 1) and ``0`` for bad (file label 2);
    - ``sensitive="age"`` (AIF360's convention): group 1 = ``age > 25`` (810 rows), group 0 =
      ``age <= 25`` (190 rows);
    - ``sensitive="sex"``: from attribute 9 (personal status and sex), ``A92`` and ``A95``
      (female) = 0 (310 rows), ``A91``, ``A93``, ``A94`` (male) = 1 (690 rows); ``A95`` does
      not occur in the file;
    - the 7 numeric attributes are standardised with train statistics, the 13 categorical ones
      one-hot encoded with the codes present in the file (61 features; 60 without ``age``, 57
      without the ``personal_status_sex`` block); columns are named ``"attribute=code"`` with
      the codes of ``german.doc``;
    - ``include_sensitive=False`` drops the ``age`` column (``sensitive="age"``) or the
      ``personal_status_sex`` block (``sensitive="sex"``);
    - a seeded split, stratified by (group, label).

    Args:
        sensitive: ``"age"`` (default) or ``"sex"``.
        include_sensitive: keep the sensitive column(s) in ``X`` (default kept).
        test_size: fraction of rows in the test part, in ``(0, 1)``.
        seed: seed of the NumPy generator that draws the split.
        data_home: folder holding ``german/german.data``; default: ``FAIRJAX_DATA_HOME``, else
            the user cache folder.
        download: fetch the file from the UCI archive when it is neither in the data home nor
            embedded.
        as_frame: pandas objects instead of arrays, named columns (see :class:`Dataset`).

    Returns:
        A :class:`Dataset` with ``task="classification"``.

    Example:
        >>> from fairjax.datasets import load_german
        >>> data = load_german(sensitive="sex")
        >>> data.X_train.shape[0] + data.X_test.shape[0]
        1000
        >>> data.group_names
        ('Female', 'Male')

    References:
        Hofmann, H. (1994). Statlog (German Credit Data) [Dataset]. UCI Machine Learning
        Repository. https://doi.org/10.24432/C5NC77
    """
    sensitive = check_choice(sensitive, "sensitive", ("age", "sex"))
    opt = _check_options(include_sensitive, test_size, seed, download, as_frame)
    table = _table(_read("german/german.data", "load_german", data_home, opt.download), None)
    y = (table[:, -1] == "1").astype(np.int32)
    names = [name for name, _ in _GERMAN_COLUMNS]
    if sensitive == "age":
        groups = (table[:, names.index("age")].astype(np.float64) > 25).astype(np.int32)
        group_names, drop = ("age <= 25", "age > 25"), "age"
    else:
        status = table[:, names.index("personal_status_sex")]
        groups = (~np.isin(status, _GERMAN_FEMALE)).astype(np.int32)
        group_names, drop = ("Female", "Male"), "personal_status_sex"
    return make_dataset(
        _typed_columns(table, _GERMAN_COLUMNS, drop=None if opt.include_sensitive else drop),
        y,
        groups,
        stratified_split(2 * groups + y, test_size=opt.test_size, seed=opt.seed),
        as_frame=opt.as_frame,
        group_names=group_names,
        target_name="good credit",
        sensitive_name=sensitive,
        task="classification",
        description=(
            f"UCI Statlog German Credit, sensitive attribute {sensitive}; numeric columns "
            "standardised with train statistics, categoricals one-hot; seeded stratified split."
        ),
    )


# ----------------------------------------------------------------------------- Communities

# The 128 @attribute names of communities.names, in file order.
_COMMUNITIES_NAMES = (
    "state county community communityname fold population householdsize racepctblack "
    "racePctWhite racePctAsian racePctHisp agePct12t21 agePct12t29 agePct16t24 agePct65up "
    "numbUrban pctUrban medIncome pctWWage pctWFarmSelf pctWInvInc pctWSocSec pctWPubAsst "
    "pctWRetire medFamInc perCapInc whitePerCap blackPerCap indianPerCap AsianPerCap "
    "OtherPerCap HispPerCap NumUnderPov PctPopUnderPov PctLess9thGrade PctNotHSGrad "
    "PctBSorMore PctUnemployed PctEmploy PctEmplManu PctEmplProfServ PctOccupManu "
    "PctOccupMgmtProf MalePctDivorce MalePctNevMarr FemalePctDiv TotalPctDiv PersPerFam "
    "PctFam2Par PctKids2Par PctYoungKids2Par PctTeen2Par PctWorkMomYoungKids PctWorkMom "
    "NumIlleg PctIlleg NumImmig PctImmigRecent PctImmigRec5 PctImmigRec8 PctImmigRec10 "
    "PctRecentImmig PctRecImmig5 PctRecImmig8 PctRecImmig10 PctSpeakEnglOnly "
    "PctNotSpeakEnglWell PctLargHouseFam PctLargHouseOccup PersPerOccupHous PersPerOwnOccHous "
    "PersPerRentOccHous PctPersOwnOccup PctPersDenseHous PctHousLess3BR MedNumBR HousVacant "
    "PctHousOccup PctHousOwnOcc PctVacantBoarded PctVacMore6Mos MedYrHousBuilt PctHousNoPhone "
    "PctWOFullPlumb OwnOccLowQuart OwnOccMedVal OwnOccHiQuart RentLowQ RentMedian RentHighQ "
    "MedRent MedRentPctHousInc MedOwnCostPctInc MedOwnCostPctIncNoMtg NumInShelters NumStreet "
    "PctForeignBorn PctBornSameState PctSameHouse85 PctSameCity85 PctSameState85 LemasSwornFT "
    "LemasSwFTPerPop LemasSwFTFieldOps LemasSwFTFieldPerPop LemasTotalReq LemasTotReqPerPop "
    "PolicReqPerOffic PolicPerPop RacialMatchCommPol PctPolicWhite PctPolicBlack PctPolicHisp "
    "PctPolicAsian PctPolicMinor OfficAssgnDrugUnits NumKindsDrugsSeiz PolicAveOTWorked "
    "LandArea PopDens PctUsePubTrans PolicCars PolicOperBudg LemasPctPolicOnPatr "
    "LemasGangUnitDeploy LemasPctOfficDrugUn PolicBudgPerPop ViolentCrimesPerPop"
).split()
_COMMUNITIES_NON_PREDICTIVE = ("state", "county", "community", "communityname", "fold")


def load_communities_crime(
    *,
    threshold: float = 0.06,
    include_sensitive: bool = True,
    test_size: float = 0.3,
    seed: int = 0,
    data_home: PathLike | None = None,
    download: bool = False,
    as_frame: bool = False,
) -> Dataset:
    """UCI Communities and Crime: violent crimes per capita; groups by share of Black residents.

    Source: ``communities.data`` (1,994 US communities, 128 columns; 1990 Census, 1990 LEMAS
    survey, 1995 FBI UCR), read from the data home only. All values were normalised to
    ``[0, 1]`` by the donor.

    Preprocessing:

    - target ``y = ViolentCrimesPerPop`` (last column), ``float32`` in ``[0, 1]``;
    - groups: ``racepctblack`` (column index 7, normalised share of Black residents);
      group 1 = ``racepctblack >= threshold``, group 0 otherwise. The default ``0.06`` is the
      median of the column, so the groups are about equal in size (1,038 vs 956 rows);
    - the 5 non-predictive columns (state, county, community, communityname, fold) are dropped,
      and so are the 22 LEMAS police columns with missing values (``?`` in 1,675 rows);
      ``OtherPerCap`` has one ``?``, imputed with the training median. 100 features remain
      (99 without ``racepctblack``), standardised with train statistics;
    - ``include_sensitive=False`` drops ``racepctblack`` (correlated columns such as
      ``racePctWhite`` remain);
    - a seeded split, stratified by group.

    Args:
        threshold: the ``racepctblack`` value (on the file's ``[0, 1]`` scale) at and above which
            a community is in group 1. Must leave both groups non-empty.
        include_sensitive: keep ``racepctblack`` in ``X`` (default kept).
        test_size: fraction of rows in the test part, in ``(0, 1)``.
        seed: seed of the NumPy generator that draws the split.
        data_home: folder holding ``communities_crime/communities.data``; default:
            ``FAIRJAX_DATA_HOME``, else the user cache folder.
        download: fetch the file from the UCI archive when it is missing.
        as_frame: pandas objects instead of arrays, named columns (see :class:`Dataset`).

    Returns:
        A :class:`Dataset` with ``task="regression"`` (``y`` is ``float32``).

    Example:
        >>> from fairjax.datasets import load_communities_crime
        >>> data = load_communities_crime()  # doctest: +SKIP
        >>> data.X_train.shape[1]  # doctest: +SKIP
        100

    References:
        Redmond, M. (2009). Communities and Crime [Dataset]. UCI Machine Learning Repository.
        https://doi.org/10.24432/C53W3X

        Redmond, M. and Baveja, A. (2002). A data-driven software tool for enabling cooperative
        information sharing among police departments. European Journal of Operational Research.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise TypeError(f"`threshold` must be a float, got {type(threshold).__name__}.")
    if not np.isfinite(threshold):
        raise ValueError(f"`threshold` must be finite, got {threshold}.")
    opt = _check_options(include_sensitive, test_size, seed, download, as_frame)
    data = _read(
        "communities_crime/communities.data", "load_communities_crime", data_home, opt.download
    )
    table = _table(data, ",")
    black = table[:, _COMMUNITIES_NAMES.index("racepctblack")].astype(np.float64)
    groups = (black >= threshold).astype(np.int32)
    if groups.min() == groups.max():
        raise ValueError(
            f"`threshold`={threshold} puts every community in group {groups[0]}; "
            "choose a value inside the range of racepctblack (0 to 1)."
        )
    y = table[:, -1].astype(np.float64)
    train_idx, test_idx = stratified_split(groups, test_size=opt.test_size, seed=opt.seed)
    columns = []
    for j, name in enumerate(_COMMUNITIES_NAMES[:-1]):
        if name in _COMMUNITIES_NON_PREDICTIVE or (
            name == "racepctblack" and not opt.include_sensitive
        ):
            continue
        missing = table[:, j] == "?"
        if missing.any() and name != "OtherPerCap":
            continue
        values = np.where(missing, "nan", table[:, j]).astype(np.float64)
        if missing.any():  # OtherPerCap: one '?', imputed with the training median
            values[missing] = np.nanmedian(values[train_idx])
        columns.append(Column(name, "numeric", values))
    return make_dataset(
        columns,
        y,
        groups,
        (train_idx, test_idx),
        as_frame=opt.as_frame,
        group_names=(f"racepctblack < {threshold:g}", f"racepctblack >= {threshold:g}"),
        target_name="ViolentCrimesPerPop",
        sensitive_name="racepctblack",
        task="regression",
        description=(
            "UCI Communities and Crime; non-predictive and incomplete LEMAS columns dropped, "
            "OtherPerCap imputed; features standardised with train statistics; groups by "
            f"racepctblack >= {threshold:g}; seeded split stratified by group."
        ),
    )


# ----------------------------------------------------------------------------- Law school

_LAW_TARGETS = ("ZFYA", "pass_bar")


def load_law_school(
    *,
    target: str = "ZFYA",
    include_sensitive: bool = True,
    test_size: float = 0.3,
    seed: int = 0,
    data_home: PathLike | None = None,
    download: bool = False,
    as_frame: bool = False,
) -> Dataset:
    """LSAC Law School (Kusner et al. subset): first-year grade or bar passage; race as group.

    Source: ``law_data.csv`` (21,791 students), the subset of the LSAC National Longitudinal Bar
    Passage Study prepared for *Counterfactual Fairness* (Kusner et al., 2017), read from the
    data home only.

    Preprocessing:

    - ``target="ZFYA"`` (default): regression on the standardised first-year average,
      ``float32``; ``target="pass_bar"``: classification, ``y = first_pf`` with 1 = passed the
      bar exam at the first attempt and 0 = did not;
    - groups: ``race``, ``White`` = 1 and every other value (Black, Asian, Hispanic, Mexican,
      Puertorican, Amerindian, Other) = 0;
    - features: ``LSAT`` and ``UGPA`` standardised with train statistics; ``sex`` (coded 1/2 in
      the file), ``race`` (8 levels, only if ``include_sensitive``) and ``region_first``
      one-hot with the levels present in the file (23 features with race, 15 without).
      ``sander_index`` (a function of LSAT and UGPA) is left out;
    - a seeded split, stratified by group (and label for ``pass_bar``).

    Args:
        target: ``"ZFYA"`` or ``"pass_bar"``.
        include_sensitive: keep the ``race=...`` indicator columns in ``X`` (default kept).
        test_size: fraction of rows in the test part, in ``(0, 1)``.
        seed: seed of the NumPy generator that draws the split.
        data_home: folder holding ``law_school/law_data.csv``; default: ``FAIRJAX_DATA_HOME``,
            else the user cache folder.
        download: fetch the file from the pinned ``osu-srml/CF_Representation_Learning`` commit
            when it is missing.
        as_frame: pandas objects instead of arrays, named columns (see :class:`Dataset`).

    Returns:
        A :class:`Dataset`, ``task="regression"`` for ZFYA, ``"classification"`` for pass_bar.

    Example:
        >>> from fairjax.datasets import load_law_school
        >>> data = load_law_school(target="pass_bar")  # doctest: +SKIP
        >>> data.group_names  # doctest: +SKIP
        ('non-White', 'White')

    References:
        Wightman, L. F. (1998). LSAC National Longitudinal Bar Passage Study. Law School
        Admission Council.

        Kusner, M. J., Loftus, J., Russell, C. and Silva, R. (2017). Counterfactual Fairness.
        NeurIPS.
    """
    target = check_choice(target, "target", _LAW_TARGETS)
    opt = _check_options(include_sensitive, test_size, seed, download, as_frame)
    header, reader = _csv(
        _read("law_school/law_data.csv", "load_law_school", data_home, opt.download)
    )
    table = np.array([row for row in reader if row])
    col = {name: j for j, name in enumerate(header) if name}
    race = table[:, col["race"]]
    groups = (race == "White").astype(np.int32)
    if target == "ZFYA":
        y, task, strata = table[:, col["ZFYA"]].astype(np.float64), "regression", groups
    else:
        y = table[:, col["first_pf"]].astype(np.float64).astype(np.int32)
        task, strata = "classification", 2 * groups + y
    columns = [
        Column("LSAT", "numeric", table[:, col["LSAT"]].astype(np.float64)),
        Column("UGPA", "numeric", table[:, col["UGPA"]].astype(np.float64)),
        Column("sex", "categorical", table[:, col["sex"]]),
        *([Column("race", "categorical", race)] if opt.include_sensitive else []),
        Column("region_first", "categorical", table[:, col["region_first"]]),
    ]
    return make_dataset(
        columns,
        y,
        groups,
        stratified_split(strata, test_size=opt.test_size, seed=opt.seed),
        as_frame=opt.as_frame,
        group_names=("non-White", "White"),
        target_name="ZFYA" if target == "ZFYA" else "pass_bar (first_pf)",
        sensitive_name="race",
        task=task,
        description=(
            f"LSAC law school (Kusner et al. subset), target {target}; LSAT and UGPA "
            "standardised with train statistics, categoricals one-hot; seeded stratified split."
        ),
    )
