"""UCI Drug consumption: a 7-level usage label (multiclass), gender or age as the groups."""

from __future__ import annotations

import numpy as np

from fairjax.datasets._base import Column, Dataset, check_choice, make_dataset, stratified_split
from fairjax.datasets._loaders import PathLike, _check_options, _read, _table

# The 13 personal columns and the 19 substances of drug_consumption.data (UCI's order).
_PERSONAL = (
    "ID Age Gender Education Country Ethnicity Nscore Escore Oscore Ascore Cscore Impulsive SS"
).split()
DRUGS = (
    "Alcohol Amphet Amyl Benzos Caff Cannabis Choc Coke Crack Ecstasy Heroin Ketamine Legalh "
    "LSD Meth Mushrooms Nicotine Semer VSA"
).split()
USAGE_LEVELS = (
    "never used",
    "used over a decade ago",
    "in the last decade",
    "in the last year",
    "in the last month",
    "in the last week",
    "in the last day",
)


def load_drug_consumption(
    *,
    drug: str = "Cannabis",
    sensitive: str = "gender",
    include_sensitive: bool = True,
    test_size: float = 0.3,
    seed: int = 0,
    data_home: PathLike | None = None,
    download: bool = False,
    as_frame: bool = False,
) -> Dataset:
    """UCI Drug consumption: when a person last used a drug (7 classes), by gender or age.

    Source: ``drug_consumption.data`` (1,885 respondents, 32 columns, no header; Fehrman et
    al., 2015), read from the data home only. The personal columns were quantified (mapped to
    real numbers) by the donors.

    Preprocessing:

    - target ``y`` = the usage class of ``drug`` (``CL0`` .. ``CL6`` -> 0 .. 6: never used,
      over a decade ago, in the last decade, year, month, week, day), ``task="multiclass"``;
    - ``sensitive="gender"``: group 0 = female (quantified ``0.48246``), 1 = male
      (``-0.48246``); ``sensitive="age"``: group 0 = 18-34 years (the two youngest of the six
      age bands), 1 = 35 and over;
    - features: the 12 personal columns but ``ID`` (age, gender, education, country,
      ethnicity, the five personality scores NEO-FFI-R, impulsiveness, sensation seeking),
      standardised with train statistics; ``include_sensitive=False`` drops the sensitive
      column;
    - a seeded split, stratified by (group, class).

    Args:
        drug: one of :data:`DRUGS` (default ``"Cannabis"``, whose 7 classes are all well
            populated).
        sensitive: ``"gender"`` (default) or ``"age"``.
        include_sensitive: keep the sensitive column in ``X`` (default kept).
        test_size: fraction of rows in the test part, in ``(0, 1)``.
        seed: seed of the NumPy generator that draws the split.
        data_home: folder holding ``drug_consumption/drug_consumption.data``; default:
            ``FAIRJAX_DATA_HOME``, else the user cache folder.
        download: fetch the file from the UCI archive when it is not in the data home.
        as_frame: pandas objects instead of arrays, named columns (see :class:`Dataset`).

    Returns:
        A :class:`Dataset` with ``task="multiclass"`` and ``int32`` labels in ``0..6``.

    Example:
        >>> from fairjax.datasets import load_drug_consumption
        >>> data = load_drug_consumption()  # doctest: +SKIP
        >>> data.X_train.shape[1], int(data.y_train.max()) + 1  # doctest: +SKIP
        (12, 7)

    References:
        Fehrman, E., Muhammad, A. K., Mirkes, E. M., Egan, V., Gorban, A. N. (2017). The five
        factor model of personality and evaluation of drug consumption risk. arXiv:1506.06297.
        UCI Machine Learning Repository, https://doi.org/10.24432/C5TC7S
    """
    drug = check_choice(drug, "drug", tuple(DRUGS))
    sensitive = check_choice(sensitive, "sensitive", ("gender", "age"))
    opt = _check_options(include_sensitive, test_size, seed, download, as_frame)
    raw = _read(
        "drug_consumption/drug_consumption.data", "load_drug_consumption", data_home, opt.download
    )
    table = _table(raw, ",")
    personal = table[:, : len(_PERSONAL)].astype(np.float64)
    usage = table[:, len(_PERSONAL) + DRUGS.index(drug)]
    y = np.char.lstrip(usage, "CL").astype(np.int32)
    if sensitive == "gender":
        groups = (personal[:, _PERSONAL.index("Gender")] < 0).astype(np.int32)
        names, column = ("female", "male"), "Gender"
    else:
        # Age bands 18-24, 25-34, 35-44, ... quantified as -0.95197, -0.07854, 0.49788, ...
        groups = (personal[:, _PERSONAL.index("Age")] > 0).astype(np.int32)
        names, column = ("18-34", "35+"), "Age"
    columns = [
        Column(name, "numeric", personal[:, j])
        for j, name in enumerate(_PERSONAL)
        if name != "ID" and (opt.include_sensitive or name != column)
    ]
    return make_dataset(
        columns,
        y,
        groups,
        stratified_split(7 * groups + y, test_size=opt.test_size, seed=opt.seed),
        as_frame=opt.as_frame,
        group_names=names,
        target_name=f"{drug} usage class",
        sensitive_name=sensitive,
        task="multiclass",
        description=(
            f"UCI Drug consumption, target the usage class of {drug} (7 classes), sensitive "
            f"attribute {sensitive}; quantified personal columns standardised with train "
            "statistics; seeded stratified split."
        ),
    )
