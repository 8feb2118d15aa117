"""Recalibration: a pilot's estimates update a programme's response assumptions.

Pure numpy, no I/O. A pilot measures, per arm, the relative uplift of sales (and
optionally of visits and of basket size, and a churn reduction) with a standard error.
The programme's :class:`~loyalty_pilot.simulator.programme.Response` holds what was
assumed before: ``visit_uplift`` ``v``, ``basket_uplift`` ``b`` and ``churn_reduction``
``c``, each a normal ``Uncertain(mean, sd)``. :func:`recalibrate` combines the two by
precision weighting (the normal-normal conjugate update) and returns a
:class:`Recalibration` whose ``posterior`` is a new Response;
:func:`recalibrated_programme` puts it into the programme, so that
:func:`~loyalty_pilot.simulator.projection.project` gives the rollout projection of the
whole chain with the pilot's evidence and its uncertainty.

The model
---------
Latent scale. Sales are visits times basket size, so a member's sales uplift is
``s = (1 + v)(1 + b) - 1`` and, on the log scale, ``log(1 + s) = x_v + x_b`` with
``x_v = log(1 + v)``, ``x_b = log(1 + b)``: additive, which is what a Gaussian linear
update needs. The prior of each uplift is carried to the log scale by the delta method
(``1 + v`` approximately log-normal)::

    x_v ~ N(log(1 + m_v), (s_v / (1 + m_v))^2)       and the same for x_b

independent (the Response holds no correlation). The churn reduction stays on its own
scale: ``c ~ N(m_c, s_c^2)`` (it multiplies hazards by ``1 - c``; no log is natural).

Observations. Each is ``y = h . theta + e``, ``e ~ N(0, se^2)``, ``theta = (x_v, x_b, c)``:

* ``sales``: ``y = log(1 + relative sales uplift)``, ``h = (1, 1, 0)``;
* ``visits``: ``h = (1, 0, 0)``; ``basket``: ``h = (0, 1, 0)`` (same log scale);
* ``churn``: the relative churn reduction itself, ``h = (0, 0, 1)``.

Sales, visits and basket size of one pilot come from the same baskets: on the log scale
the sales effect is (nearly) the sum of the other two, so using all three would count
the evidence twice. When both ``visits`` and ``basket`` are given they are used and
``sales`` is not; with one of them only, ``sales`` is used and the lone component is
not (the notes say so). ``churn`` is independent of the rest.

Members versus stores. The response is the uplift of *members'* revenue; a store-level
pilot measures the uplift of the stores' whole revenue, of which the members make the
share ``members_share`` (``m``: the projection's members' revenue over its revenue, see
:func:`members_share`). A store uplift ``u`` is a members' uplift ``u / m``: each of the
sales, visits and basket observations ``(y, se)`` is mapped to
``y' = log(1 + (e^y - 1) / m)``, ``se' = se e^y / (m + e^y - 1)`` (delta method at the
estimate); the visit and basket maps assume members' share of visits is their share of
revenue. ``members_share=1`` (the default) takes the estimates as members' uplifts (a
customer-level pilot among members). The churn reduction is taken as the members'.

Update. The standard Gaussian linear (Kalman) update, one observation at a time (the
same as all at once, the errors being independent)::

    S = h Sigma h' + se^2,   K = Sigma h' / S
    mu    <- mu + K (y - h mu)
    Sigma <- Sigma - K h Sigma

For one parameter this is precision weighting: ``w = s0^2 / (s0^2 + se^2)``, the data's
share of the posterior precision, ``mu1 = mu0 + w (y - mu0)``, ``s1^2 = (1 - w) s0^2``.
For the sales observation, ``K = (s_v^2, s_b^2) / (s_v^2 + s_b^2 + se^2)`` on the
latent scale: the surprise ``y - (mu_v + mu_b)`` is split between visits and basket size
in proportion to their prior variances. The **weight** of the pilot on a quantity ``q``
is ``1 - Var1(q) / Var0(q)`` (its share of the posterior precision; for one parameter
exactly ``w`` above); 0 when ``Var0(q) = 0``.

Back to the Response. ``mean = exp(mu) - 1``, ``sd = exp(mu) tau`` (delta method again:
with no evidence the prior comes back exactly). A sales observation leaves ``x_v`` and
``x_b`` negatively correlated, but the projection draws the assumptions independently:
with ``decorrelate="sales"`` (default) both posterior sds are multiplied by the one
factor ``k = sqrt(Var1(x_v + x_b) / (Var1(x_v) + Var1(x_b)))``, so that independent
draws reproduce the posterior spread of the sales uplift, which drives the profit (and
a later pilot's update of it is then exactly right); ``decorrelate="marginal"`` keeps
the marginal posterior sds (the sales uplift's spread is then overstated). ``k = 1``
when no sales observation is used. :attr:`ParameterUpdate.posterior_sd` is always the
marginal sd; ``k`` is :attr:`Recalibration.sd_scale`.

Edge cases
----------
* ``se = inf``: no information; the observation is dropped (noted), weight 0.
* ``se = 0``: an exact observation; the observed combination's posterior sd is 0.
* A prior sd of 0: the parameter is taken as known; the prior dominates fully and no
  pilot moves it (weight 0). A sales observation then moves only the other uplift; if
  both have sd 0 it is dropped. An exact observation of a known quantity is dropped
  too (0 / 0: the prior is kept), and the notes say so.
* Negative estimates are allowed (``relative > -1``); a posterior churn reduction mean
  at or below -1 cannot be a Response and is a ValueError.
* Per-segment assumptions (``response.segments``) are kept as they were: the pilot
  measures the average response. The notes say so when there are some.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import stats

from loyalty_pilot.simulator.programme import Programme, Response, Uncertain

if TYPE_CHECKING:
    from loyalty_pilot.simulator.projection import Projection

__all__ = [
    "OBSERVATIONS",
    "PARAMETERS",
    "Observation",
    "ParameterUpdate",
    "Recalibration",
    "members_share",
    "recalibrate",
    "recalibrated_programme",
]

#: what a pilot may observe, in the order they are applied
OBSERVATIONS = ("sales", "visits", "basket", "churn")
#: the summaries of a Recalibration (sales_uplift is derived: (1 + v)(1 + b) - 1)
PARAMETERS = ("visit_uplift", "basket_uplift", "sales_uplift", "churn_reduction")
_ROWS = {  # h of each observation over theta = (x_v, x_b, c)
    "sales": (1.0, 1.0, 0.0),
    "visits": (1.0, 0.0, 0.0),
    "basket": (0.0, 1.0, 0.0),
    "churn": (0.0, 0.0, 1.0),
}
_LOG_SCALE = ("sales", "visits", "basket")


@dataclass(frozen=True)
class Observation:
    """One pilot estimate: ``estimate`` with its standard error ``se`` (``>= 0``, may be inf).

    For ``sales``, ``visits`` and ``basket``: on the log scale, ``log(1 + relative
    uplift)`` (what a log-scale estimator reports as ``log_estimate``). For ``churn``: the
    relative churn reduction itself (0.1 = hazard 10 % lower).
    """

    estimate: float
    se: float

    def __post_init__(self) -> None:
        if not isinstance(self.estimate, int | float) or not math.isfinite(self.estimate):
            raise ValueError(f"estimate == {self.estimate!r}, must be a finite number")
        if not isinstance(self.se, int | float) or math.isnan(self.se) or self.se < 0:
            raise ValueError(f"se == {self.se!r}, must be a number >= 0 (inf: no information)")
        object.__setattr__(self, "estimate", float(self.estimate))
        object.__setattr__(self, "se", float(self.se))

    @classmethod
    def from_relative(
        cls, relative: float, rel_ci_low: float, rel_ci_high: float, *, alpha: float = 0.05
    ) -> Observation:
        """From a relative uplift and its two-sided ``1 - alpha`` interval (on the relative
        scale, as a log-scale estimator reports it): ``log(1 + relative)``, and the se from
        the interval's width on the log scale, ``(log(1 + high) - log(1 + low)) / (2 z)``."""
        for name, value in (("relative", relative), ("rel_ci_low", rel_ci_low)):
            _check_relative(name, value)
        _check_relative("rel_ci_high", rel_ci_high)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha == {alpha!r}, must be in (0, 1)")
        if rel_ci_high < rel_ci_low:
            raise ValueError(f"rel_ci_high {rel_ci_high!r} is below rel_ci_low {rel_ci_low!r}")
        z = float(stats.norm.ppf(1 - alpha / 2))
        se = (math.log1p(rel_ci_high) - math.log1p(rel_ci_low)) / (2 * z)
        return cls(math.log1p(relative), se)

    @classmethod
    def from_relative_se(cls, relative: float, se: float) -> Observation:
        """From a relative uplift and its se on the relative scale (delta method:
        ``se / (1 + relative)`` on the log scale)."""
        _check_relative("relative", relative)
        if math.isnan(se) or se < 0:
            raise ValueError(f"se == {se!r}, must be a number >= 0")
        return cls(math.log1p(relative), se / (1 + relative))

    @property
    def relative(self) -> float:
        """``exp(estimate) - 1``: the relative uplift (meaningless for a churn observation)."""
        return math.expm1(self.estimate)

    def to_dict(self) -> dict[str, float | None]:
        return {"estimate": self.estimate, "se": _finite(self.se)}


def _check_relative(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= -1:
        raise ValueError(f"{name} == {value!r}, must be a finite relative uplift > -1")


@dataclass(frozen=True)
class ParameterUpdate:
    """One assumption before and after the pilot.

    ``prior_*`` / ``posterior_*``: on the Response's relative scale (``posterior_sd`` is
    the marginal posterior sd; the Response's sd is it times ``sd_scale`` of the
    recalibration). ``latent_*``: on the scale of the update, ``log(1 + x)`` for the
    uplifts, ``x`` for the churn reduction. ``weight``: the pilot's share of the posterior
    precision, ``1 - latent_posterior_sd^2 / latent_prior_sd^2`` (0 when the prior sd is 0).
    """

    prior_mean: float
    prior_sd: float
    posterior_mean: float
    posterior_sd: float
    latent_prior_mean: float
    latent_prior_sd: float
    latent_posterior_mean: float
    latent_posterior_sd: float
    weight: float

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Recalibration:
    """The outcome of :func:`recalibrate` (see the module docstring).

    ``prior`` and ``posterior``: the Responses before and after; ``parameters``: one
    :class:`ParameterUpdate` per name of :data:`PARAMETERS`; ``observations``: the inputs
    as given (before the members' share mapping); ``used``: the observations that entered
    the update, each as mapped to the members' latent scale; ``weight``: the pilot's share
    of the posterior precision of the sales uplift; ``correlation``: posterior correlation
    of ``log(1 + v)`` and ``log(1 + b)``; ``sd_scale``: the factor ``k`` applied to both
    uplift sds in the posterior Response; ``notes``: edge cases met, in words.
    """

    prior: Response
    posterior: Response
    parameters: Mapping[str, ParameterUpdate]
    observations: Mapping[str, Observation]
    used: Mapping[str, Observation]
    members_share: float
    decorrelate: str
    weight: float
    correlation: float
    sd_scale: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite se as None)."""
        return {
            "prior": self.prior.model_dump(mode="json"),
            "posterior": self.posterior.model_dump(mode="json"),
            "parameters": {k: v.to_dict() for k, v in self.parameters.items()},
            "observations": {k: v.to_dict() for k, v in self.observations.items()},
            "used": {k: v.to_dict() for k, v in self.used.items()},
            "members_share": self.members_share,
            "decorrelate": self.decorrelate,
            "weight": self.weight,
            "correlation": self.correlation,
            "sd_scale": self.sd_scale,
            "notes": list(self.notes),
        }


def members_share(projection: Projection) -> float:
    """Members' share of the stores' revenue over a projection's horizon: the ``m`` that
    maps a store-level uplift to the members' (``u / m``)."""
    monthly = projection.monthly
    revenue = float(monthly["revenue"].sum())
    if revenue <= 0:
        raise ValueError("the projection has no revenue")
    return float(monthly["members_revenue"].sum()) / revenue


def recalibrate(
    prior: Response,
    *,
    sales: Observation | None = None,
    visits: Observation | None = None,
    basket: Observation | None = None,
    churn: Observation | None = None,
    members_share: float = 1.0,
    decorrelate: Literal["sales", "marginal"] = "sales",
) -> Recalibration:
    """Update ``prior`` with a pilot's observations (module docstring: model, edge cases).

    ``members_share`` in (0, 1]: the members' share of the measured units' revenue (1:
    the estimates are already members' uplifts).
    """
    if not isinstance(prior, Response):
        raise TypeError(f"prior must be a Response, got {type(prior).__name__}")
    if not (isinstance(members_share, int | float) and 0 < members_share <= 1):
        raise ValueError(f"members_share == {members_share!r}, must be in (0, 1]")
    if decorrelate not in ("sales", "marginal"):
        raise ValueError(f"decorrelate == {decorrelate!r}, must be 'sales' or 'marginal'")
    given = {
        name: obs
        for name, obs in zip(OBSERVATIONS, (sales, visits, basket, churn), strict=True)
        if obs is not None
    }
    for name, obs in given.items():
        if not isinstance(obs, Observation):
            raise TypeError(f"{name} must be an Observation, got {type(obs).__name__}")
    notes: list[str] = []
    informative = {}
    for name, obs in given.items():
        if math.isinf(obs.se):
            notes.append(f"{name}: se is infinite (no information): not used")
        else:
            informative[name] = obs
    chosen = _choose(informative, notes)
    used = {name: _to_members(name, given[name], float(members_share)) for name in chosen}

    names = ("visit_uplift", "basket_uplift", "churn_reduction")
    priors = [getattr(prior, n) for n in names]
    mu0 = np.array(
        [math.log1p(priors[0].mean), math.log1p(priors[1].mean), priors[2].mean], dtype=float
    )
    tau0 = np.array(
        [priors[0].sd / (1 + priors[0].mean), priors[1].sd / (1 + priors[1].mean), priors[2].sd]
    )
    for name, item in zip(names, priors, strict=True):
        if item.sd == 0 and any(_ROWS[o][names.index(name)] for o in used):
            notes.append(
                f"{name}: prior sd 0, taken as known: the prior dominates fully, "
                "the pilot does not move it"
            )
    cov0 = np.diag(tau0**2)
    mu, cov = mu0.copy(), cov0.copy()
    for name in list(used):
        obs = used[name]
        h = np.array(_ROWS[name])
        s = float(h @ cov @ h) + obs.se**2
        if s <= 0:
            notes.append(
                f"{name}: an exact observation (se 0) of a quantity the prior holds as known "
                "(sd 0): the prior is kept"
            )
            del used[name]
            continue
        gain = cov @ h / s
        mu = mu + gain * (obs.estimate - float(h @ mu))
        cov = cov - np.outer(gain, h @ cov)
        cov = (cov + cov.T) / 2
        cov[np.diag_indices(3)] = np.maximum(np.diag(cov), 0.0)

    var0 = np.diag(cov0)
    var1 = np.diag(cov)
    sum0 = var0[0] + var0[1]
    sum1 = max(float(cov[0, 0] + cov[1, 1] + 2 * cov[0, 1]), 0.0)
    marginal_sum = var1[0] + var1[1]
    k = 1.0
    if decorrelate == "sales" and marginal_sum > 0:
        k = math.sqrt(min(sum1 / marginal_sum, 1.0))
    denom = math.sqrt(var1[0] * var1[1])
    correlation = float(cov[0, 1] / denom) if denom > 0 else 0.0

    parameters: dict[str, ParameterUpdate] = {}
    for j, name in enumerate(names):
        exact = (priors[j].mean, priors[j].sd)
        parameters[name] = _summary(mu0[j], var0[j], mu[j], var1[j], uplift=j < 2, prior=exact)
    parameters["sales_uplift"] = _summary(mu0[0] + mu0[1], sum0, mu[0] + mu[1], sum1, uplift=True)
    parameters = {name: parameters[name] for name in PARAMETERS}

    def uncertain(name: str, scale: float) -> Uncertain:
        p = parameters[name]
        if not p.posterior_mean > -1:
            raise ValueError(
                f"the posterior {name} mean is {p.posterior_mean:g}: at or below -1, outside "
                "the response model (check the churn observation)"
            )
        return Uncertain(mean=p.posterior_mean, sd=p.posterior_sd * scale)

    fields: dict[str, Any] = {
        "visit_uplift": uncertain("visit_uplift", k),
        "basket_uplift": uncertain("basket_uplift", k),
        "churn_reduction": uncertain("churn_reduction", 1.0),
    }
    if prior.segments:
        fields["segments"] = prior.segments
        notes.append(
            "per-segment assumptions (" + ", ".join(prior.segments) + ") are kept as they were: "
            "the pilot measures the average member response"
        )
    posterior = Response(**fields)
    return Recalibration(
        prior=prior,
        posterior=posterior,
        parameters=parameters,
        observations=given,
        used=used,
        members_share=float(members_share),
        decorrelate=decorrelate,
        weight=parameters["sales_uplift"].weight,
        correlation=correlation,
        sd_scale=k,
        notes=tuple(notes),
    )


def recalibrated_programme(programme: Programme, recalibration: Recalibration) -> Programme:
    """``programme`` with the recalibration's posterior response (ValueError when the
    programme's response is not the recalibration's prior: the evidence would be applied
    to other assumptions than the ones it updated)."""
    if programme.response != recalibration.prior:
        raise ValueError(
            f"programme {programme.programme!r}: its response is not the recalibration's "
            "prior; recalibrate its own response"
        )
    return programme.model_copy(update={"response": recalibration.posterior})


# ----------------------------------------------------------------------------- helpers


def _choose(given: Mapping[str, Observation], notes: list[str]) -> list[str]:
    """The observations to use, in :data:`OBSERVATIONS` order (no evidence counted twice)."""
    names = [n for n in OBSERVATIONS if n in given]
    components = [n for n in ("visits", "basket") if n in given]
    if "sales" in given and len(components) == 2:
        notes.append(
            "sales not used: visits and basket size carry the same evidence (on the log scale "
            "the sales uplift is their sum)"
        )
        names.remove("sales")
    elif "sales" in given and len(components) == 1:
        notes.append(
            f"{components[0]} not used: measured on the same baskets as sales, it would count "
            "the evidence twice; give visits and basket together to split the sales uplift"
        )
        names.remove(components[0])
    return names


def _to_members(name: str, obs: Observation, share: float) -> Observation:
    """A store-level observation as the members' (module docstring, Members versus stores)."""
    if name not in _LOG_SCALE or share == 1:
        return obs
    grow = math.exp(obs.estimate)
    inner = share + grow - 1  # (1 + (e^y - 1) / m) * m
    if inner <= 0:
        raise ValueError(
            f"{name}: a store uplift of {grow - 1:+.3g} with members making {share:.3g} of the "
            "revenue would mean members' revenue at or below zero"
        )
    se = obs.se * grow / inner if math.isfinite(obs.se) else math.inf
    return Observation(math.log(inner / share), se)


def _summary(
    mu0: float,
    var0: float,
    mu1: float,
    var1: float,
    *,
    uplift: bool,
    prior: tuple[float, float] | None = None,
) -> ParameterUpdate:
    """``prior``: the Response's own (mean, sd), reported exactly (and, when the pilot did
    not move the parameter, as its posterior: no rounding through the log scale)."""
    tau0, tau1 = math.sqrt(var0), math.sqrt(var1)
    weight = 1.0 - var1 / var0 if var0 > 0 else 0.0
    weight = min(max(weight, 0.0), 1.0)
    if uplift:
        natural = (math.expm1(mu0), math.exp(mu0) * tau0, math.expm1(mu1), math.exp(mu1) * tau1)
    else:
        natural = (mu0, tau0, mu1, tau1)
    if prior is not None:
        unmoved = mu1 == mu0 and var1 == var0
        natural = (*prior, *(prior if unmoved else natural[2:]))
    return ParameterUpdate(
        *(float(x) for x in natural),
        latent_prior_mean=float(mu0),
        latent_prior_sd=float(tau0),
        latent_posterior_mean=float(mu1),
        latent_posterior_sd=float(tau1),
        weight=float(weight),
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
