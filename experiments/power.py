"""Power of a pilot design by placebo pilots on the chain's own history.

For each candidate design (units per arm x test weeks) :func:`placebo_power` runs
``n_placebos`` fake pilots inside the history: a fake start ``s`` drawn uniformly where
``[s - pre_weeks, s + weeks)`` fits, a fake assignment drawn with the design's own ``draw``,
the estimator the evaluation uses (:func:`~loyalty_pilot.experiments.did.did` with CR2,
:func:`~loyalty_pilot.experiments.did.ancova` with HC2, or randomization inference with
the DiD statistic), on the same scale (``log`` by default, as
:func:`~loyalty_pilot.experiments.evaluate.evaluate` on positive sales). At zero effect
the share of placebos with ``p <= alpha`` is the design's false-positive rate; with a
multiplicative effect ``delta`` on the treated stores' test weeks it is the power. The
minimum detectable effect (MDE) is the smallest ``delta > 0`` where the power reaches
``power`` (80 %).

Nothing is refitted per effect: an effect moves every placebo's estimate linearly and its
robust variance quadratically (exactly: log scale ``x = log(1 + delta)`` shifts the treated
contrasts by ``x``; level scale: the treated post means scale by ``1 + delta``), so the
power curve is known exactly from the zero-effect fits (see
:mod:`loyalty_pilot.experiments._power_kernels`). Window means come from cumulative sums,
placebos sharing a start are drawn in one call, and the estimators are batched over
placebos: the grid of 5 sizes x 3 durations x 1,000 placebos on 500 stores x 104 weeks
takes well under a second (``benchmarks/bench_power.py``, BENCHMARKS.md).

Each cell also carries an analytic cross-check, :func:`analytic_mde` from the between-store
sd of the unit contrast (DiD, RI) or of the post mean given the pre mean (ANCOVA); none for
the ratio estimator (its sales weights change with every draw).

``estimator="ratio"`` is :func:`~loyalty_pilot.experiments.ratio.ratio_did`, the uplift of
the treated stores' total sales, on the level history whatever ``scale`` says (the table's
scale is then ``"ratio"``: the estimate is the log of the ratio of ratios, shifted by
``log(1 + delta)`` exactly by an effect ``delta``, its se and df unchanged).
``controls="all"`` compares ``per_arm`` treated stores with every other store of ``y``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from . import _power_kernels as kernels

Draw = kernels.Draw
"""``draw(rng, per_arm, n_draws, start)`` -> int8 codes (n_draws, n_units): -1 not in the
pilot, 0 control, 1 treated, exactly ``per_arm`` units of 0 and of 1 per row. ``start`` is
the fake start's column in ``y`` (designs matching on pre-period covariates recompute them
from the weeks before it)."""

ESTIMATORS = ("did", "ancova", "ri", "ratio")
SCALES = ("log", "level")
CONTROLS = ("matched", "all")


def complete_draw(n_units: int) -> Draw:
    """Complete randomization: ``2 per_arm`` stores at random, half of them treated.

    >>> codes = complete_draw(10)(np.random.default_rng(0), 2, 3, 0)
    >>> codes.shape, [int((row == 1).sum()) for row in codes], codes.dtype.name
    ((3, 10), [2, 2, 2], 'int8')
    """
    _check_int("n_units", n_units, 2)

    def draw(rng: np.random.Generator, per_arm: int, n_draws: int, start: int) -> np.ndarray:
        if 2 * per_arm > n_units:
            raise ValueError(f"per_arm == {per_arm}, must be <= n_units / 2 ({n_units // 2}).")
        keys = rng.random((n_draws, n_units))
        order = np.argpartition(keys, [per_arm - 1, 2 * per_arm - 1], axis=1)
        codes = np.full((n_draws, n_units), -1, dtype=np.int8)
        rows = np.arange(n_draws)[:, None]
        codes[rows, order[:, :per_arm]] = 1  # the per_arm smallest keys
        codes[rows, order[:, per_arm : 2 * per_arm]] = 0  # the next per_arm
        return codes

    return draw


def all_controls(draw: Draw) -> Draw:
    """``draw`` with every unit outside the pilot (-1) made a control (0).

    The treated arm is the ``per_arm`` units of code 1 that ``draw`` picks; the control
    arm is every other unit (what ``controls="all"`` does).

    >>> codes = all_controls(complete_draw(6))(np.random.default_rng(0), 2, 2, 0)
    >>> [(int((r == 1).sum()), int((r == 0).sum())) for r in codes]
    [(2, 4), (2, 4)]
    """

    def every_other(rng: np.random.Generator, per_arm: int, n_draws: int, start: int) -> np.ndarray:
        codes = np.array(draw(rng, per_arm, n_draws, start), dtype=np.int8, copy=True)
        codes[codes == -1] = 0
        return codes

    return every_other


@dataclass(frozen=True, eq=False)
class PlaceboFitsOut:
    """The per-placebo fits of one cell at zero effect, for other decision rules.

    ``estimate``, ``se``, ``df``: arrays (n_placebos,) on the estimator's ``scale`` (NaN
    for a degenerate placebo; ``se`` and ``df`` NaN for randomization inference). On the
    ``"ratio"`` and ``"log"`` scales a true relative effect ``u`` makes a placebo's
    estimate ``estimate + log1p(u)`` with the same ``se`` and ``df`` (exactly for
    ``"ratio"`` and for ``"did"``/``"ancova"`` on ``"log"``: the effect multiplies the
    treated stores' test-period sales), so the placebos give the sampling distribution of
    the pilot's (estimate, se, df) at any uplift. On the ``"level"`` scale the estimate
    becomes ``estimate + slope u`` and the variance ``se^2 + 2 var1 u + var2 u^2``
    (``slope, var1, var2`` given; on the other scales they are 1, 0, 0).
    ``treated_share``: mean over the placebos of the treated units' share of the test-period
    sales of every unit of ``y`` (level values), e.g. to cost the pilot from the chain's
    sales. ``per_arm``: treated units; ``n_control``: control units of each placebo.
    """

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    per_arm: int
    weeks: int
    scale: str
    estimator: str
    treated_share: float
    n_control: int
    slope: np.ndarray
    var1: np.ndarray
    var2: np.ndarray


@dataclass(frozen=True)
class PowerCell:
    """One design: ``per_arm`` stores per arm for ``weeks`` test weeks.

    ``mde``: relative minimum detectable effect (0.03 = +3 %) at ``target_power`` (inf when
    no effect reaches it, NaN when every placebo is degenerate); ``power_at_threshold``:
    the simulated power at the table's threshold (None without one);
    ``false_positive_rate``: share of placebos rejecting at zero effect, with its binomial
    Monte Carlo se ``fpr_mc_se``; ``analytic_mde``: :func:`analytic_mde` from the
    between-store sd (relative); ``pre_weeks``: pre weeks used (fewer than asked when the
    history is short); ``n_starts``: distinct fake starts drawn; ``n_degenerate``:
    placebos without a p-value (zero variance), counted as not rejecting.
    """

    per_arm: int
    weeks: int
    mde: float
    power_at_threshold: float | None
    false_positive_rate: float
    fpr_mc_se: float
    analytic_mde: float | None
    n_placebos: int
    pre_weeks: int = 0
    n_starts: int = 0
    n_degenerate: int = 0


@dataclass(frozen=True)
class PowerTable:
    """The grid of :class:`PowerCell` (sizes outer, weeks inner) and its settings.

    ``threshold``: the relative effect the pilot must detect (e.g. the programme's
    break-even uplift), None when not given; ``notes``: what the caller should know (a
    shortened pre-period, the RI draws used); ``controls``: ``"matched"`` (``per_arm``
    controls) or ``"all"`` (every other unit); ``adjust``: the ratio estimator's
    adjustment; ``fits``: with ``placebo_power(keep_fits=True)`` one
    :class:`PlaceboFitsOut` per cell, in the order of ``cells`` (empty otherwise; not in
    :meth:`to_dict`).
    """

    cells: tuple[PowerCell, ...]
    alpha: float
    target_power: float
    estimator: str
    scale: str
    pre_weeks: int
    threshold: float | None
    notes: tuple[str, ...] = ()
    controls: str = "matched"
    adjust: str = "none"
    fits: tuple[PlaceboFitsOut, ...] = field(default=(), compare=False, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per cell, the :class:`PowerCell` fields as columns."""
        names = [f.name for f in fields(PowerCell)]
        return pd.DataFrame([asdict(c) for c in self.cells], columns=names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and inf become None), with the recommended cell or None."""
        chosen = self.recommend() if self.threshold is not None else None
        return {
            "alpha": self.alpha,
            "target_power": self.target_power,
            "estimator": self.estimator,
            "scale": self.scale,
            "pre_weeks": self.pre_weeks,
            "controls": self.controls,
            "adjust": self.adjust,
            "threshold": _json(self.threshold),
            "notes": list(self.notes),
            "cells": [{k: _json(v) for k, v in asdict(c).items()} for c in self.cells],
            "recommended": None if chosen is None else {"per_arm": chosen.per_arm,
                                                        "weeks": chosen.weeks},
        }  # fmt: skip

    def recommend(self, threshold: float | None = None) -> PowerCell | None:
        """Smallest design (fewest stores per arm, then fewest weeks) with ``mde <= threshold``.

        ``threshold`` defaults to the table's. None when no design of the grid reaches it:
        no affordable pilot can detect that effect.
        """
        if threshold is None:
            threshold = self.threshold
        if threshold is None:
            raise ValueError("threshold is None and the table has none: give the effect to detect.")
        _check_threshold(threshold)
        fit = [c for c in self.cells if math.isfinite(c.mde) and c.mde <= threshold]
        return min(fit, key=lambda c: (c.per_arm, c.weeks), default=None)


def analytic_mde(
    sd: float,
    n_treated: int,
    n_control: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    df: float | None = None,
) -> float:
    """Minimum detectable difference of a two-sided two-sample test, on ``sd``'s scale.

    ``(q_{1 - alpha/2} + q_{power}) * sd * sqrt(1/n_treated + 1/n_control)`` with ``q`` the
    Student t quantiles with ``df`` degrees of freedom (normal quantiles when ``df`` is
    None). It ignores rejections in the wrong direction and, with ``df``, approximates the
    noncentral t by a shifted central t: slightly conservative, close to exact from about
    10 df. For a DiD of unit contrasts ``sd`` is their between-unit sd and ``df = n1 + n0 - 2``.

    >>> round(analytic_mde(1.0, 100, 100), 4)
    0.3962
    """
    if not (isinstance(sd, int | float) and math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd == {sd!r}, must be a finite number >= 0.")
    _check_int("n_treated", n_treated, 1)
    _check_int("n_control", n_control, 1)
    _check_unit("alpha", alpha)
    _check_unit("power", power)
    if df is not None and not (isinstance(df, int | float) and df > 0):
        raise ValueError(f"df == {df!r}, must be > 0 or None.")
    from scipy import stats

    dist = stats.norm() if df is None else stats.t(df)
    factor = float(dist.ppf(1.0 - alpha / 2.0) + dist.ppf(power))
    return factor * sd * math.sqrt(1.0 / n_treated + 1.0 / n_control)


def placebo_power(
    y: np.ndarray,
    *,
    sizes: Sequence[int],
    weeks: Sequence[int],
    pre_weeks: int,
    n_placebos: int = 1000,
    draw: Draw | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    estimator: str = "did",
    scale: str = "log",
    threshold: float | None = None,
    rng: np.random.Generator | int | None = None,
    n_ri_draws: int = 200,
    controls: str = "matched",
    adjust: str = "none",
    keep_fits: bool = False,
) -> PowerTable:
    """MDE and false-positive rate of every design of ``sizes x weeks`` by placebo pilots.

    Args:
        y: units x periods array of the chain's history (level values, e.g. weekly sales
            per store), before any real pilot. ``scale="log"`` needs it positive.
        sizes: stores per arm to try (each >= 2 and <= units / 2).
        weeks: test durations to try (each >= 1).
        pre_weeks: pre-period weeks of each placebo. When the history is shorter than
            ``pre_weeks + weeks`` the placebos use the ``n_periods - weeks`` weeks that fit
            (the cell's ``pre_weeks`` and a note say so); fewer than 2 is an error.
        n_placebos: placebo pilots per design.
        draw: the design's assignment (see :data:`Draw`); complete randomization of
            ``2 per_arm`` stores by default. One arm is compared with control: a pilot
            with ``k`` variants has ``per_arm`` stores in each arm.
        alpha: two-sided level of the evaluation's test.
        power: the target power of the MDE.
        estimator: ``"did"`` (two-way FE, CR2 by store, Bell-McCaffrey df), ``"ancova"``
            (post mean on pre mean, HC2, Bell-McCaffrey df), ``"ri"`` (randomization
            inference, DiD statistic) or ``"ratio"`` (the total-sales ratio DiD of
            :func:`~loyalty_pilot.experiments.ratio.ratio_did`), as
            :func:`~loyalty_pilot.experiments.evaluate.evaluate` computes them.
        scale: ``"log"`` (the estimator sees ``log(y)``: the evaluation's default for
            positive sales) or ``"level"``. Ignored by ``"ratio"`` (level sales; the
            table's scale is ``"ratio"``).
        threshold: relative effect to detect (0.03 = +3 %), e.g. the break-even uplift;
            gives ``power_at_threshold`` and the default of :meth:`PowerTable.recommend`.
        rng: seed or Generator; the same seed gives the same table.
        n_ri_draws: for ``"ri"``: assignments sampled per placebo on top of the observed
            one, or every assignment when there are at most this many (so the RI is exact
            for 4 stores per arm at the default). The cost is placebos x draws x stores
            per cell (1,000 x 200 x 48 = 10 M products at 24 per arm): cheap, because the
            RI distribution of a DiD is one matrix product.
        controls: ``"matched"`` (``per_arm`` controls drawn by ``draw``) or ``"all"``
            (every unit not treated is a control, :func:`all_controls`; then ``sizes``
            may go up to ``units - 2``). Not for ``"ri"`` (its kernel draws equal arms).
        adjust: for ``"ratio"``: ``"none"`` or ``"regression"`` (the momentum covariate).
        keep_fits: keep every placebo's (estimate, se, df) in ``PowerTable.fits``.

    Returns:
        A :class:`PowerTable`. The MDE counts only positive effects (an uplift); the test
        stays two-sided as in the evaluation. Placebos are independent draws of start and
        assignment but share the chain, so the Monte Carlo se of the false-positive rate
        (binomial) is a slight underestimate when stores are few.

    Raises:
        ValueError: a parameter is invalid (the message names it).
    """
    scale = _check_setup(estimator, scale, controls, adjust)
    _check_unit("alpha", alpha)
    _check_unit("power", power)
    if threshold is not None:
        _check_threshold(threshold)
    _check_int("n_placebos", n_placebos, 1)
    _check_int("n_ri_draws", n_ri_draws, 1)
    _check_int("pre_weeks", pre_weeks, 1)
    if not isinstance(keep_fits, bool | np.bool_):
        raise ValueError(f"keep_fits == {keep_fits!r}, must be True or False.")
    _check_rng(rng)
    level = _check_history(y, "level")
    history = kernels.History(_check_history(y, scale) if scale != "ratio" else level)
    n_units, n_periods = history.shape
    sizes = _grid("sizes", sizes, 2, _most_treated(n_units, controls))
    weeks = _grid("weeks", weeks, 1, None)
    notes = []
    for w in weeks:
        pre = _fitting_pre(n_periods, w, pre_weeks)
        if pre < pre_weeks:
            notes.append(
                f"{w} test weeks: {pre} pre weeks used instead of pre_weeks == {pre_weeks} "
                f"(the history has {n_periods} periods)"
            )
    if estimator == "ri":
        notes.append(f"randomization inference: {n_ri_draws} sampled assignments per placebo "
                     "(every assignment when there are at most that many)")  # fmt: skip
    draw = _draw(draw, n_units, controls)
    share = kernels.History(level) if keep_fits else None
    streams = np.random.default_rng(rng).spawn(len(sizes) * len(weeks))
    cells, kept = [], []
    for i, per_arm in enumerate(sizes):
        for k, w in enumerate(weeks):
            cell, fits = _cell(
                history, per_arm, w, min(pre_weeks, n_periods - w), n_placebos, draw,
                alpha, power, estimator, scale, threshold, streams[i * len(weeks) + k],
                n_ri_draws, adjust, share,
            )  # fmt: skip
            cells.append(cell)
            if fits is not None:
                kept.append(fits)
    return PowerTable(
        cells=tuple(cells),
        alpha=float(alpha),
        target_power=float(power),
        estimator=estimator,
        scale=scale,
        pre_weeks=int(pre_weeks),
        threshold=None if threshold is None else float(threshold),
        notes=tuple(notes),
        controls=controls,
        adjust=adjust,
        fits=tuple(kept),
    )


@dataclass(frozen=True, eq=False)
class PlaceboSample:
    """The placebo pilots of one design and the estimator's result on each, at zero effect.

    ``starts[j]``: the fake start (a column of ``y``; pre weeks ``[s - pre_weeks, s)``,
    test weeks ``[s, s + weeks)``); ``units[j]``: the pilot's rows of ``y``, the
    ``per_arm`` treated first, then the controls (``per_arm`` of them, or every other unit
    with ``controls="all"``); ``estimate, se, df, p_value``: what the estimator returns on
    that pilot's panel (the effect on the estimator's scale; ``se`` and ``df`` NaN for
    randomization inference, whose p-value is over ``n_ri_draws`` assignments).
    """

    starts: np.ndarray
    units: np.ndarray
    per_arm: int
    weeks: int
    pre_weeks: int
    estimator: str
    scale: str
    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p_value: np.ndarray


def placebo_sample(
    y: np.ndarray,
    *,
    per_arm: int,
    weeks: int,
    pre_weeks: int,
    n_placebos: int = 1000,
    draw: Draw | None = None,
    estimator: str = "did",
    scale: str = "log",
    rng: np.random.Generator | int | None = None,
    n_ri_draws: int = 200,
    controls: str = "matched",
    adjust: str = "none",
) -> PlaceboSample:
    """The placebo pilots of one design, fitted at zero effect (see :func:`placebo_power`).

    For diagnostics and for pinning the vectorized estimators to the evaluation's own
    (each placebo's figures equal ``did``/``ancova``/``randomization_inference``/
    ``ratio_did`` on the panel ``y[units[j], starts[j] - pre_weeks : starts[j] + weeks]``).
    """
    scale = _check_setup(estimator, scale, controls, adjust)
    _check_int("n_placebos", n_placebos, 1)
    _check_int("n_ri_draws", n_ri_draws, 1)
    _check_int("pre_weeks", pre_weeks, 1)
    _check_rng(rng)
    history = kernels.History(_check_history(y, "level" if scale == "ratio" else scale))
    n_units, n_periods = history.shape
    per_arm = _grid("sizes", [per_arm], 2, _most_treated(n_units, controls))[0]
    weeks = _grid("weeks", [weeks], 1, None)[0]
    pre = _fitting_pre(n_periods, weeks, pre_weeks)
    generator = np.random.default_rng(rng)
    draw = _draw(draw, n_units, controls)
    placebos = kernels.Placebos.draw(history, per_arm, weeks, pre, n_placebos, draw, generator,
                                     recent=_recent(estimator, adjust, pre))  # fmt: skip
    fits = placebos.fit(estimator, scale, generator, n_ri_draws)
    if isinstance(fits, kernels.RandomizationFits):
        nan = np.full(n_placebos, np.nan)
        estimate, se, df, p_value = fits.estimate, nan, nan, fits.p_value(0.0)
    else:
        estimate, se, df, p_value = fits.estimate, fits.se, fits.df, fits.p_value
    return PlaceboSample(placebos.starts, placebos.units, per_arm, weeks, pre, estimator, scale,
                         estimate, se, df, p_value)  # fmt: skip


def _cell(
    history: kernels.History,
    per_arm: int,
    weeks: int,
    pre: int,
    n_placebos: int,
    draw: Draw,
    alpha: float,
    power: float,
    estimator: str,
    scale: str,
    threshold: float | None,
    rng: np.random.Generator,
    n_ri_draws: int,
    adjust: str = "none",
    share: kernels.History | None = None,
) -> tuple[PowerCell, PlaceboFitsOut | None]:
    """One design: draw the placebos, fit them, and read the MDE off the power curve;
    the fits too when ``share`` (the level history, for the treated share) is given."""
    placebos = kernels.Placebos.draw(history, per_arm, weeks, pre, n_placebos, draw, rng,
                                     recent=_recent(estimator, adjust, pre))  # fmt: skip
    fits = placebos.fit(estimator, scale, rng, n_ri_draws, alpha)
    x_threshold = None if threshold is None else _to_x(threshold, scale)
    at_threshold = None
    if isinstance(fits, kernels.RandomizationFits):
        p_zero = fits.p_value(0.0)
        d = placebos.post_mean - placebos.pre_mean
        rough = kernels.did_placebos(d, per_arm).se  # a scale for the first bracket
        guess = float(np.nanmedian(rough)) if np.isfinite(rough).any() else 1.0
        if scale == "level":  # x is relative there
            guess /= max(float(np.abs(placebos.post_mean).mean()), np.finfo(float).tiny)
        x_mde = kernels.ri_smallest(fits, alpha, power, 2.0 * guess)
        if x_threshold is not None:
            at_threshold = float(np.mean(fits.p_value(x_threshold) <= alpha))
    else:
        p_zero = fits.p_value
        rejections = kernels.Rejections(fits, alpha)
        x_mde = rejections.smallest(power) if np.isfinite(p_zero).any() else math.nan
        if x_threshold is not None:
            at_threshold = float(rejections.power(x_threshold))
    fpr = float(np.mean(p_zero <= alpha))
    kept = None if share is None else _kept(placebos, fits, share, weeks, scale, estimator)
    n_control = placebos.units.shape[1] - per_arm
    cell = PowerCell(
        per_arm=per_arm,
        weeks=weeks,
        mde=_to_relative(x_mde, scale),
        power_at_threshold=at_threshold,
        false_positive_rate=fpr,
        fpr_mc_se=math.sqrt(fpr * (1.0 - fpr) / n_placebos),
        analytic_mde=_analytic(
            history, per_arm, weeks, pre, alpha, power, scale, estimator, n_control
        ),
        n_placebos=n_placebos,
        pre_weeks=pre,
        n_starts=len(np.unique(placebos.starts)),
        n_degenerate=int(np.sum(~np.isfinite(p_zero))),
    )
    return cell, kept


def _kept(
    placebos: kernels.Placebos,
    fits: kernels.PlaceboFits | kernels.RandomizationFits,
    share: kernels.History,
    weeks: int,
    scale: str,
    estimator: str,
) -> PlaceboFitsOut:
    n_units = share.shape[0]
    _, post = share.means(placebos.units, placebos.starts[:, None], 1, weeks)
    _, chain = share.means(np.arange(n_units)[:, None], placebos.starts[None, :], 1, weeks)
    with np.errstate(divide="ignore", invalid="ignore"):
        treated = post[:, : placebos.per_arm].sum(axis=1) / chain.sum(axis=0)
    n_p = len(placebos.starts)
    if isinstance(fits, kernels.RandomizationFits):
        nan = np.full(n_p, np.nan)
        estimate, se, df, slope, var1, var2 = fits.estimate, nan, nan, nan, nan, nan
    else:
        estimate, se, df = fits.estimate, fits.se, fits.df
        slope, var1, var2 = (np.broadcast_to(np.asarray(v, dtype=float), (n_p,)).copy()
                             for v in (fits.slope, fits.var1, fits.var2))  # fmt: skip
    return PlaceboFitsOut(
        estimate=np.asarray(estimate, dtype=float), se=np.asarray(se, dtype=float),
        df=np.asarray(df, dtype=float), per_arm=placebos.per_arm, weeks=weeks, scale=scale,
        estimator=estimator, treated_share=float(np.nanmean(treated)),
        n_control=placebos.units.shape[1] - placebos.per_arm, slope=slope, var1=var1,
        var2=var2,
    )  # fmt: skip


def _analytic(
    history: kernels.History,
    per_arm: int,
    weeks: int,
    pre: int,
    alpha: float,
    power: float,
    scale: str,
    estimator: str,
    n_control: int,
) -> float | None:
    """:func:`analytic_mde` from the between-store sd, pooled over every possible start.

    DiD and RI: sd of ``d_i`` with ``df = per_arm + n_control - 2``; ANCOVA: residual sd of
    the post mean on the pre mean with ``df = per_arm + n_control - 3``; None for the ratio.
    Relative: ``exp(x) - 1`` on the log scale, ``x`` over the mean test-period level on the
    level scale.
    """
    if estimator == "ratio":
        return None
    n_units, n_periods = history.shape
    starts = np.arange(pre, n_periods - weeks + 1)[None, :]
    pre_mean, post_mean = history.means(np.arange(n_units)[:, None], starts, pre, weeks)
    if estimator == "ancova":
        pc = pre_mean - pre_mean.mean(axis=0)
        qc = post_mean - post_mean.mean(axis=0)
        sxx, sxy, syy = (pc * pc).sum(axis=0), (pc * qc).sum(axis=0), (qc * qc).sum(axis=0)
        ssr = syy - sxy * sxy / np.where(sxx > 0, sxx, np.inf)
        var, df = float(np.mean(ssr / (n_units - 2))), per_arm + n_control - 3
    else:
        var = float(np.mean(np.var(post_mean - pre_mean, axis=0, ddof=1)))
        df = per_arm + n_control - 2
    if df < 1 or not math.isfinite(var) or n_units < 3:
        return None
    x = analytic_mde(math.sqrt(max(var, 0.0)), per_arm, n_control, alpha=alpha, power=power,
                     df=df)  # fmt: skip
    if scale == "level":
        level = float(post_mean.mean())
        return x / level if level > 0 else None
    return _to_relative(x, scale)


def _fitting_pre(n_periods: int, weeks: int, pre_weeks: int) -> int:
    """Pre weeks that fit before ``weeks`` test weeks; ValueError when fewer than 2."""
    fit = n_periods - weeks
    if fit < 2:
        raise ValueError(
            f"weeks == {weeks}: the history has {n_periods} periods, which leaves {fit} "
            "pre weeks; pre_weeks needs at least 2."
        )
    return min(pre_weeks, fit)


def _check_rng(rng: Any) -> None:
    if not (rng is None or isinstance(rng, np.random.Generator)) and (
        isinstance(rng, bool) or not isinstance(rng, int | np.integer)
    ):
        raise ValueError(f"rng == {rng!r}, must be None, an int seed or a numpy Generator.")


def _to_x(relative: float, scale: str) -> float:
    return relative if scale == "level" else math.log1p(relative)


def _to_relative(x: float, scale: str) -> float:
    if not math.isfinite(x):
        return x
    return x if scale == "level" else math.expm1(x)


def _check_setup(estimator: str, scale: str, controls: str, adjust: str) -> str:
    """Validate the estimator's options; returns the scale the fits are on."""
    _check_choice("estimator", estimator, ESTIMATORS)
    _check_choice("scale", scale, SCALES)
    _check_choice("controls", controls, CONTROLS)
    from .ratio import ADJUSTMENTS

    _check_choice("adjust", adjust, ADJUSTMENTS)
    if adjust != "none" and estimator != "ratio":
        raise ValueError(f"adjust == {adjust!r} is for estimator 'ratio' only, not {estimator!r}.")
    if controls == "all" and estimator == "ri":
        raise ValueError(
            "controls == 'all' cannot be used with estimator 'ri': its placebo kernel draws "
            "two arms of per_arm units (use 'did', 'ancova' or 'ratio')."
        )
    return "ratio" if estimator == "ratio" else scale


def _most_treated(n_units: int, controls: str) -> int:
    """Largest ``per_arm``: half the units, or all but two with every other as control."""
    return n_units // 2 if controls == "matched" else n_units - 2


def _draw(draw: Draw | None, n_units: int, controls: str) -> Draw:
    if draw is None:
        if controls == "all":
            return all_controls(_treated_draw(n_units))
        return complete_draw(n_units)
    return all_controls(draw) if controls == "all" else draw


def _treated_draw(n_units: int) -> Draw:
    """``per_arm`` treated units at random, no control (for :func:`all_controls`)."""

    def draw(rng: np.random.Generator, per_arm: int, n_draws: int, start: int) -> np.ndarray:
        order = np.argpartition(rng.random((n_draws, n_units)), per_arm - 1, axis=1)
        codes = np.full((n_draws, n_units), -1, dtype=np.int8)
        codes[np.arange(n_draws)[:, None], order[:, :per_arm]] = 1
        return codes

    return draw


def _recent(estimator: str, adjust: str, pre: int) -> int:
    """Pre weeks of the ratio's momentum covariate (0: none)."""
    if estimator != "ratio" or adjust == "none":
        return 0
    from .ratio import recent_weeks

    return recent_weeks(pre)


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json(value.item())
    return value


def _check_history(y: Any, scale: str) -> np.ndarray:
    values = np.asarray(y, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"y has shape {values.shape}, must be (units, periods).")
    if not np.isfinite(values).all():
        i, t = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"y[{i}, {t}] == {values[i, t]}, must be finite.")
    if scale == "log":
        if (values <= 0).any():
            i, t = np.argwhere(values <= 0)[0]
            raise ValueError(
                f"y[{i}, {t}] == {values[i, t]:g}: scale='log' needs positive values "
                "(use scale='level')."
            )
        values = np.log(values)
    return values


def _grid(name: str, values: Sequence[int], least: int, most: int | None) -> list[int]:
    out = list(values) if not isinstance(values, int | np.integer) else None
    if not out:
        raise ValueError(f"{name} == {values!r}, must be a non-empty sequence of integers.")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < least:
            raise ValueError(f"{name} has {v!r}, must hold integers >= {least}.")
        if most is not None and v > most:
            raise ValueError(f"{name} has {v!r}, must be <= units / 2 ({most}).")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} == {values!r} has duplicates.")
    return sorted(int(v) for v in out)


def _check_int(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{name} == {value!r}, must be an integer >= {least}.")


def _check_unit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{name} == {value!r}, must be in (0, 1).")


def _check_threshold(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"threshold == {value!r}, must be a relative effect > 0.")
    if not math.isfinite(value):
        raise ValueError(f"threshold == {value!r}, must be finite.")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} == {value!r}, must be one of {list(choices)}.")
