"""GO / NO-GO / EXTEND: the pilot's pre-registered decision rules, applied to plain data.

:func:`decide` is pure (no I/O, no database): it takes the evaluation's figures as the
dataclasses of :mod:`loyalty_pilot.reports.document` and plain values, and returns a
:class:`~loyalty_pilot.reports.document.Decision` whose reasons are codes of
:data:`~loyalty_pilot.reports.document.REASON_CODES` with exactly the parameters listed
there. A reason's ``passed`` is True when it argues for going ahead, False when it argues
against, None when it does neither (not known, or neutral).

Inputs:

* ``arms``: each variant against the control on the primary metric (relative uplift and
  its interval as fractions). NaN figures count as missing.
* ``threshold``: the relative uplift the interval must clear (``decision.min_uplift``, by
  default the break-even uplift), one number or one per arm (a mapping: each arm against
  its own break-even; ``Decision.threshold`` is then the largest); ``threshold_source``
  ``'break_even'`` or
  ``'min_uplift'``.
* ``guardrails``: one row per arm and guardrail metric; ``passed`` True, False or None.
* ``roi``: the recalibrated full-rollout ROI of each arm; the rule uses its **mean**.
* ``quality``: :class:`~loyalty_pilot.reports.document.QualityCheck` rows, by ``code``:

  - ``sample_ratio``: ``params["p_value"]``, the sample-ratio-mismatch test;
  - ``balance``: ``params["max_std_diff"]``, the largest absolute standardized
    difference of the frozen design;
  - ``pre_trend``: ``params["p_value"]``, the joint pre-trend test;
  - ``sequential``: ``params["arm"]`` and ``params["look"]``, only read for the ``look``
    of the ``sequential_boundary_crossed`` reason (default: ``weeks_observed``; whether
    a boundary was crossed comes from ``sequential_crossed``);
  - ``planned_weeks``: ignored (``weeks_observed`` and ``weeks_planned`` decide).

  When the figure is missing (None or NaN) the row's ``passed`` is used instead; when
  both are None the check was not made: no reason, and it blocks nothing. A row with
  ``params["arm"]`` applies to that arm only, one without to every arm. Unknown codes
  raise ``ValueError``.
* ``weeks_to_settle(arm)``: how many more weeks would settle the arm's interval against
  the threshold (None: not even the longest test considered), e.g. from
  :func:`loyalty_pilot.pilots.decision_money.weeks_to_settle`; ``longest_weeks`` the
  most more weeks it considered (the figure of the ``extend_not_enough`` reason);
  ``alpha`` the pilot's ``decision.alpha`` (the pre-trend rule).

The rules, in order:

1. **Per arm.** Primary interval: ``above`` if ``rel_ci_low > threshold``, ``below`` if
   ``rel_ci_high < threshold``, else ``straddles`` (reason ``interval_*_threshold``,
   passed True / False / None). When the threshold or the interval is missing the arm
   cannot be placed: ``interval_straddles_threshold`` with passed None and the missing
   figures None, and the arm stays open (it can neither go nor be ruled out). Guardrails
   of the arm: any ``passed`` False is a **breach** (``guardrail_failed``), any None is
   **unknown** (``guardrail_unknown``: blocks GO, is not a NO-GO), True
   ``guardrail_passed``. ROI: mean ``>= min_roi`` (``roi_above_minimum``) is required for
   GO; below it ``roi_below_minimum`` (passed False); a missing mean is
   ``roi_below_minimum`` with passed None and ``roi`` None (blocks GO, not a NO-GO).
2. **Quality.** Sample ratio: ``p < 0.001`` is a mismatch; balance: ``max |std diff| <=
   0.25`` is ok; pre-trend: ``p >= alpha`` is ok (not tested: blocks nothing). A failed
   sample-ratio, balance or pre-trend check means the pilot's comparison itself is in
   doubt: more weeks will not fix it and it is no evidence against the programme, so
   the arms it applies to can neither go nor be ruled out (**investigate and rerun**):
   when no arm is left to decide on, the verdict is EXTEND with ``extend_weeks`` None and
   the failed check as the reason. Planned weeks: ``weeks_observed >= weeks_planned``
   (``planned_weeks_reached`` / ``planned_weeks_not_reached``), or, for an arm, an
   efficacy boundary crossed (``sequential_boundary_crossed``, one reason per crossing
   arm); an arm with neither cannot go yet.
3. **GO.** An arm qualifies if its interval is above, no guardrail of it is breached or
   unknown, its ROI is ok and its quality is ok (rule 2). GO if at least one arm
   qualifies. The recommended arm is the qualifying one with the highest relative
   uplift, unless another qualifying arm beats it in the head-to-head with an interval
   excluding 0 (then that one). It is compared head to head with every other arm still
   in play (qualifying or open, rule 5): the head-to-head row of the pair (either
   direction; a reversed row is inverted exactly, ``1 / (1 + x) - 1``) gives the
   recommended arm's relative uplift over the other; an interval excluding 0 is
   ``variant_preferred`` (passed True), otherwise ``variants_indistinguishable`` (passed
   None: the better point estimate is still recommended). ``recommendation_confidence``
   is the smallest ``1 - p`` over these pairs (``p_value_adjusted``, or the raw p-value
   when there is no adjusted one); None when there is no other arm in play or a pair has
   no head-to-head p-value. Only a GO recommends an arm.
4. **NO-GO** when no arm can still qualify: every arm's interval is below the threshold,
   or a guardrail of it is breached, or its interval is above but its ROI mean is below
   ``min_roi`` (the uplift clears the threshold and still does not pay), in any mix.
   Arms in doubt by rule 2 are not ruled out.
5. **EXTEND** otherwise. Each open arm (neither qualifying, ruled out nor in doubt) needs
   the weeks that can settle it: ``weeks_to_settle(arm)`` when its interval straddles the
   threshold, and at least the remaining planned weeks when they are not reached and no
   boundary was crossed (the largest of these). Unknowns (guardrail, ROI, threshold) are
   not counted, so an arm blocked only by them has no need, and neither has an arm whose
   ``weeks_to_settle`` is None (or not given). ``extend_weeks`` is the smallest need over
   the open arms (reason ``extend_weeks``, passed None). When no arm has a need and some
   arm's ``weeks_to_settle`` said even the longest test would not settle it:
   ``extend_weeks`` None and ``extend_not_enough`` (passed False, ``weeks`` the
   ``longest_weeks`` given). Otherwise no extension reason: the other reasons say what
   blocks.

Reasons are ordered: primary interval (arm by arm), guardrails, ROI, quality (sample
ratio, balance, pre-trend, planned weeks, boundary crossings), head-to-head, extension.

**On money** (``decision.rule: expected_profit``, the default): ``money`` gives, per arm,
a :class:`MoneyView` (the posterior's expected full-rollout profit, the probability of
clearing the break-even and of a loss beyond the limit, whether the rule goes, and the
extension worth buying, if any). Rule 1's interval is then replaced by the money: the
arm is *above* when the expected profit is positive and the loss probability at most
its limit (``expected_profit_go``), *open* when it is not but more weeks are worth their
cost (``expected_profit_open``; its need is those weeks), else *below* (ruled out:
``expected_profit_negative`` or ``loss_too_likely``); an arm whose pilot gave no usable
estimate (``placed`` False) cannot be placed, as a missing interval (never GO on the prior
alone). ROI is not read (the expected
profit is the ROI's numerator), nor ``weeks_to_settle``. Among qualifying arms the one
of highest expected profit is recommended; ``recommendation_confidence`` is the smallest
probability that it is the more profitable one over the arms still in play
(``prob_better``). EXTEND gives ``extend_worth`` with the value and cost of the weeks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loyalty_pilot.reports.document import (
    REASON_CODES,
    ArmResult,
    Decision,
    GuardrailRow,
    QualityCheck,
    Quantiles,
    Reason,
)

__all__ = [
    "BALANCE_MAX_STD_DIFF",
    "SRM_ALPHA",
    "THRESHOLD_SOURCES",
    "MoneyView",
    "decide",
]

SRM_ALPHA = 0.001  # a sample-ratio p-value below this is a mismatch
BALANCE_MAX_STD_DIFF = 0.25  # the largest absolute standardized difference that is ok
THRESHOLD_SOURCES = ("break_even", "min_uplift")
QUALITY_CODES = ("sample_ratio", "balance", "pre_trend", "planned_weeks", "sequential")

# arm states
_QUALIFIES = "qualifies"
_OUT = "out"  # cannot qualify any more (rule 4)
_DOUBT = "doubt"  # a failed quality check: investigate and rerun (rule 2)
_OPEN = "open"  # may still qualify (rule 5)


@dataclass(frozen=True)
class MoneyView:
    """One arm's money figures for the expected-profit rule (see the module docstring).

    ``extend``: (weeks, value, cost) of the extension worth buying, None when none is;
    ``prob_better``: other arm -> probability this arm is the more profitable one."""

    expected_profit: float
    prob_above: float
    prob_loss: float
    max_loss_probability: float
    go: bool
    extend: tuple[int, float, float] | None = None
    prob_better: Mapping[str, float] = field(default_factory=dict)
    placed: bool = True  # False: the pilot gave no usable estimate (the prior alone)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _reason(code: str, passed: bool | None, **params: Any) -> Reason:
    expected = REASON_CODES[code]
    if tuple(params) != expected:  # pragma: no cover - a programming error
        raise AssertionError(f"{code}: params {tuple(params)} != {expected}")
    return Reason(code, passed, dict(params))


@dataclass
class _Arm:
    name: str
    relative: float | None
    position: str | None = None  # above | below | straddles | None (cannot be placed)
    breach: bool = False
    unknown_guardrail: bool = False
    roi_ok: bool | None = None
    doubt: bool = False
    weeks_ok: bool = False
    state: str = _OPEN
    needs: list[int | None] = field(default_factory=list)


def _quality_outcome(check: QualityCheck, alpha: float) -> tuple[str, bool, Any] | None:
    """(reason code, passed, figure) of a sample-ratio, balance or pre-trend row."""
    params = check.params or {}
    if check.code == "sample_ratio":
        figure = _num(params.get("p_value"))
        ok = check.passed if figure is None else figure >= SRM_ALPHA
        codes = ("sample_ratio_ok", "sample_ratio_mismatch")
    elif check.code == "balance":
        # the caller's verdict when it gives one (e.g. judged against the design's own
        # randomization distribution); else the rule of thumb on the largest difference
        figure = _num(params.get("max_std_diff"))
        if check.passed is not None or figure is None:
            ok = check.passed
        else:
            ok = abs(figure) <= BALANCE_MAX_STD_DIFF
        codes = ("balance_ok", "balance_poor")
    else:  # pre_trend
        figure = _num(params.get("p_value"))
        ok = check.passed if figure is None else figure >= alpha
        codes = ("pre_trend_ok", "pre_trend_violated")
    if ok is None:
        return None
    return (codes[0] if ok else codes[1]), bool(ok), figure


def _versus(
    arm: str, other: str, head_to_head: Sequence[ArmResult]
) -> tuple[float | None, float | None, float | None, float | None] | None:
    """(difference, low, high, p) of ``arm`` over ``other``, relative; None: no row."""
    for row in head_to_head:
        p = _num(row.p_value_adjusted)
        p = _num(row.p_value) if p is None else p
        if row.arm == arm and row.baseline == other:
            return _num(row.relative), _num(row.rel_ci_low), _num(row.rel_ci_high), p
        if row.arm == other and row.baseline == arm:  # invert: (1 + x) -> 1 / (1 + x)

            def inv(x: float | None) -> float | None:
                return None if x is None or x <= -1 else 1 / (1 + x) - 1

            return (
                inv(_num(row.relative)),
                inv(_num(row.rel_ci_high)),
                inv(_num(row.rel_ci_low)),
                p,
            )
    return None


def decide(
    *,
    arms: Sequence[ArmResult],
    head_to_head: Sequence[ArmResult],
    threshold: float | Mapping[str, float | None] | None,
    threshold_source: str,
    guardrails: Sequence[GuardrailRow],
    roi: Mapping[str, Quantiles],
    min_roi: float,
    quality: Sequence[QualityCheck],
    weeks_observed: int,
    weeks_planned: int,
    sequential_crossed: Mapping[str, bool],
    weeks_to_settle: Callable[[str], int | None] | None = None,
    longest_weeks: int | None = None,
    alpha: float = 0.05,
    money: Mapping[str, MoneyView] | None = None,
) -> Decision:
    """The decision by the rules of the module docstring (on money when ``money`` is
    given: one view per arm)."""
    if threshold_source not in THRESHOLD_SOURCES:
        raise ValueError(
            f"threshold_source == {threshold_source!r}, must be one of {THRESHOLD_SOURCES}."
        )
    if not arms:
        raise ValueError("no arm to decide on")
    names = [a.arm for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"an arm is given twice: {names}")
    for check in quality:
        if check.code not in QUALITY_CODES:
            raise ValueError(f"quality check {check.code!r}, must be one of {QUALITY_CODES}.")
    if isinstance(threshold, Mapping):  # each arm against its own threshold
        per_arm = {name: _num(threshold.get(name)) for name in names}
        known = [v for v in per_arm.values() if v is not None]
        threshold = max(known) if known else None
    else:
        threshold = _num(threshold)
        per_arm = dict.fromkeys(names, threshold)
    state = {a.arm: _Arm(a.arm, _num(a.relative)) for a in arms}
    interval_reasons: list[Reason] = []
    guardrail_reasons: list[Reason] = []
    roi_reasons: list[Reason] = []
    quality_reasons: list[Reason] = []

    # rule 1: interval, guardrails, ROI
    for result in arms:
        arm = state[result.arm]
        low, high = _num(result.rel_ci_low), _num(result.rel_ci_high)
        own = per_arm[result.arm]
        if money is not None:
            view = money.get(result.arm)
            if view is None:
                raise ValueError(f"money: no view of arm {result.arm!r}")
            figures = {
                "arm": arm.name,
                "expected_profit": view.expected_profit,
                "prob_above": view.prob_above,
                "prob_loss": view.prob_loss,
                "max_loss_probability": view.max_loss_probability,
            }
            if not view.placed:  # no estimate: the arm cannot be placed (never GO on the prior)
                arm.position = None
                interval_reasons.append(
                    _reason(
                        "interval_straddles_threshold", None, arm=arm.name, low=None, high=None,
                        threshold=own,
                    )
                )  # fmt: skip
                continue
            if view.go:
                arm.position, code, passed = "above", "expected_profit_go", True
            elif view.extend is not None:
                arm.position, code, passed = "straddles", "expected_profit_open", None
            elif view.expected_profit <= 0:
                arm.position, code, passed = "below", "expected_profit_negative", False
            else:
                arm.position, code, passed = "below", "loss_too_likely", False
            interval_reasons.append(_reason(code, passed, **figures))
            continue
        if own is None or low is None or high is None:
            arm.position = None
            code, passed = "interval_straddles_threshold", None
        elif low > own:
            arm.position, code, passed = "above", "interval_above_threshold", True
        elif high < own:
            arm.position, code, passed = "below", "interval_below_threshold", False
        else:
            arm.position, code, passed = "straddles", "interval_straddles_threshold", None
        interval_reasons.append(
            _reason(code, passed, arm=arm.name, low=low, high=high, threshold=own)
        )
    for row in guardrails:
        if row.arm not in state:
            continue
        arm = state[row.arm]
        if row.passed is None:
            arm.unknown_guardrail = True
            guardrail_reasons.append(
                _reason("guardrail_unknown", None, arm=arm.name, metric=row.metric)
            )
            continue
        arm.breach = arm.breach or not row.passed
        guardrail_reasons.append(
            _reason(
                "guardrail_passed" if row.passed else "guardrail_failed",
                bool(row.passed),
                arm=arm.name,
                metric=row.metric,
                bound=_num(row.bound),
                margin=_num(row.margin),
            )
        )
    for name, arm in state.items():
        if money is not None:  # the expected profit is the decision's money figure
            arm.roi_ok = True
            continue
        quantiles = roi.get(name)
        mean = None if quantiles is None else _num(quantiles.mean)
        if mean is None:
            arm.roi_ok = None
            roi_reasons.append(
                _reason("roi_below_minimum", None, arm=name, roi=None, min_roi=min_roi)
            )
        else:
            arm.roi_ok = mean >= min_roi
            roi_reasons.append(
                _reason(
                    "roi_above_minimum" if arm.roi_ok else "roi_below_minimum",
                    arm.roi_ok,
                    arm=name,
                    roi=mean,
                    min_roi=min_roi,
                )
            )

    # rule 2: quality
    for code in ("sample_ratio", "balance", "pre_trend"):
        for check in quality:
            if check.code != code:
                continue
            outcome = _quality_outcome(check, alpha)
            if outcome is None:
                continue
            reason_code, ok, figure = outcome
            param = "max_std_diff" if code == "balance" else "p_value"
            quality_reasons.append(_reason(reason_code, ok, **{param: figure}))
            if not ok:
                target = (check.params or {}).get("arm")
                for name, arm in state.items():
                    if target is None or target == name:
                        arm.doubt = True
    reached = weeks_observed >= weeks_planned
    quality_reasons.append(
        _reason(
            "planned_weeks_reached" if reached else "planned_weeks_not_reached",
            reached,
            weeks=weeks_observed,
            planned=weeks_planned,
        )
    )
    looks = {
        (c.params or {}).get("arm"): (c.params or {}).get("look")
        for c in quality
        if c.code == "sequential"
    }
    for name, arm in state.items():
        crossed = bool(sequential_crossed.get(name, False))
        arm.weeks_ok = reached or crossed
        if crossed:
            look = looks.get(name)
            look = weeks_observed if look is None else look
            quality_reasons.append(
                _reason("sequential_boundary_crossed", True, arm=name, look=look)
            )

    # states (rules 3-5)
    not_enough = False
    for name, arm in state.items():
        if arm.doubt:
            arm.state = _DOUBT
        elif (
            arm.position == "below"
            or arm.breach
            or (arm.position == "above" and arm.roi_ok is False)
        ):
            arm.state = _OUT
        elif arm.position == "above" and not arm.unknown_guardrail and arm.roi_ok and arm.weeks_ok:
            arm.state = _QUALIFIES
        else:
            arm.state = _OPEN
            if money is not None:
                view = money[name]
                if view.extend is not None and arm.position == "straddles":
                    arm.needs.append(max(int(view.extend[0]), 1))
            elif arm.position == "straddles" or (
                arm.position is None and per_arm[name] is not None
            ):
                settle = None if weeks_to_settle is None else weeks_to_settle(name)
                if settle is None and weeks_to_settle is not None:
                    not_enough = True
                arm.needs.append(None if settle is None else max(int(settle), 1))
            if not arm.weeks_ok:
                arm.needs.append(weeks_planned - weeks_observed)

    reasons = interval_reasons + guardrail_reasons + roi_reasons + quality_reasons
    qualifying = [a for a in state.values() if a.state == _QUALIFIES]

    def verdict(
        code: str,
        arm: str | None = None,
        confidence: float | None = None,
        extend: int | None = None,
    ) -> Decision:
        return Decision(
            code, reasons, threshold, threshold_source, arm, confidence, extend, min_roi,
            "interval" if money is None else "expected_profit",
        )  # fmt: skip

    if qualifying:  # rule 3
        if money is not None:
            ranked = sorted(qualifying, key=lambda a: money[a.name].expected_profit, reverse=True)
        else:
            ranked = sorted(
                qualifying,
                key=lambda a: -math.inf if a.relative is None else a.relative,
                reverse=True,
            )
        best = ranked[0]
        for other in ranked[1:] if money is None else ():
            pair = _versus(best.name, other.name, head_to_head)
            if pair is not None and pair[2] is not None and pair[2] < 0:
                best = other
                break
        rivals = [a for a in state.values() if a is not best and a.state in (_QUALIFIES, _OPEN)]
        confidences: list[float | None] = []
        for other in rivals:
            pair = _versus(best.name, other.name, head_to_head)
            if pair is None:
                confidences.append(
                    None if money is None else _num(money[best.name].prob_better.get(other.name))
                )
                continue
            difference, low, high, p = pair
            preferred = low is not None and low > 0
            reasons.append(
                _reason(
                    "variant_preferred" if preferred else "variants_indistinguishable",
                    True if preferred else None,
                    arm=best.name,
                    other=other.name,
                    difference=difference,
                    low=low,
                    high=high,
                    p_value=p,
                )
            )
            if money is not None:
                confidences.append(_num(money[best.name].prob_better.get(other.name)))
            else:
                confidences.append(None if p is None else 1 - p)
        known = [c for c in confidences if c is not None]
        confidence = min(known) if known and len(known) == len(confidences) else None
        return verdict("GO", best.name, confidence)

    if all(a.state == _OUT for a in state.values()):  # rule 4
        return verdict("NO-GO")

    # rule 5
    needs = []
    for arm in state.values():
        if arm.state == _OPEN and arm.needs and None not in arm.needs:
            needs.append(max(arm.needs))
    extend = min(needs) if needs else None
    bought = None
    if extend is not None and money is not None:  # the money extension that sets it, if any
        bought = next(
            (
                money[a.name].extend
                for a in state.values()
                if a.state == _OPEN
                and a.needs
                and max(a.needs) == extend
                and money[a.name].extend is not None
                and money[a.name].extend[0] == extend  # type: ignore[index]
            ),
            None,
        )
    if bought is not None:
        _, value, cost = bought
        reasons.append(_reason("extend_worth", None, weeks=extend, value=value, cost=cost))
    elif extend is not None:
        reasons.append(_reason("extend_weeks", None, weeks=extend))
    elif not_enough:
        reasons.append(_reason("extend_not_enough", False, weeks=longest_weeks))
    return verdict("EXTEND", extend=extend)
