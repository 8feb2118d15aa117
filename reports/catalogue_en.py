"""English wording of the report: every label and every sentence, keyed by code.

Sentences are :meth:`str.format` templates; their ``{fields}`` are the parameters of
the code (``reports.document.REASON_CODES`` / ``RISK_CODES``) or of the label, formatted
for the language by :mod:`reports.i18n` before they are filled in.
"""

EN: dict[str, str] = {
    # page and sections
    "title": "Decision report: {pilot}",
    "generated": "Generated on {date}",
    "section.summary": "Decision",
    "section.weekly": "{metric} per week: treated and control",
    "section.uplift": "Uplift by arm and by segment",
    "section.cost": "Cost at full rollout",
    "section.smart": "SMART scorecard",
    "section.checks": "Reasons, guardrails and quality checks",
    "section.design": "Design of the pilot",
    "section.assumptions": "Assumptions and sensitivity",
    "section.rollout": "Rollout plan",
    "section.reproducibility": "Reproducibility",
    "summary.uplifts": "Uplift of each arm",
    "summary.interval": "Intervals at {level} confidence.",
    "summary.interval_simultaneous": "Intervals at {level} confidence each, so that the {arms} "
    "variants are covered together at {total} (Bonferroni): the intervals the decision reads.",
    "summary.rollout": "At full rollout, over {months} months",
    "summary.money_arm": "{arm}: uplift of total sales {estimate} ({low} to {high}); "
    "prior {prior} (sd {prior_sd}, from the programme's assumptions), after the pilot "
    "{posterior} (sd {posterior_sd}).",
    "summary.log_scale": "    the store-equal-weight (log-scale) estimate differs: "
    "{estimate} ({low} to {high}).",
    "summary.risks": "The three biggest risks",
    "summary.no_risks": "No notable risk was found.",
    "summary.more": "Details follow below.",
    # banner
    "verdict.GO": "GO",
    "verdict.NO-GO": "NO-GO",
    "verdict.EXTEND": "EXTEND",
    "headline.GO": "Roll out {arm}.",
    "headline.GO_none": "Roll out the programme.",
    "headline.NO-GO": "Do not roll out.",
    "headline.EXTEND": "Run the pilot for {weeks} more weeks before deciding.",
    "headline.EXTEND_none": "Run the pilot longer before deciding.",
    "confidence": "{arm} against the other variant: confidence {confidence} "
    "(1 minus the Holm-adjusted p-value of their head-to-head test).",
    "threshold": "The uplift must clear {threshold} ({source}).",
    "threshold_none": "No threshold could be set for the uplift.",
    "threshold_source.break_even": "the break-even uplift of the programmes",
    "threshold_source.min_uplift": "the minimum uplift set for the pilot",
    "no_reason": "No reason was recorded for this decision.",
    # plain-words uplifts
    "uplift.interval": "{arm}: between {low} and {high} more {metric} per {unit} "
    "(best estimate {estimate}).",
    "uplift.interval_less": "{arm}: between {high_abs} and {low_abs} less {metric} per {unit} "
    "(best estimate {estimate}).",
    "uplift.interval_change": "{arm}: a change in {metric} per {unit} between {low} and {high} "
    "(best estimate {estimate}).",
    "uplift.point": "{arm}: {estimate} more {metric} per {unit}, without an interval.",
    "uplift.none": "{arm}: the uplift could not be estimated (status {status}).",
    "metric.sales": "sales",
    "metric.visits": "visits",
    "metric.basket_size": "basket size",
    "metric.active_customers": "active customers",
    "metric.gross_margin_rate": "gross margin rate",
    "metric.programme_cost_share": "programme cost share",
    "metric.returns_rate": "returns rate",
    "unit.points": "{value} pp",
    "unit.store": "store",
    "unit.region": "region",
    "unit.customer": "customer",
    "unit.unit": "unit",
    "by.region": "regions",
    "by.segment": "segments",
    # generic words
    "na": "n/a",
    "yes": "yes",
    "no": "no",
    "result.pass": "pass",
    "result.fail": "fail",
    "result.unknown": "unknown",
    "stance.for": "for",
    "stance.against": "against",
    "stance.open": "open",
    "more_items": "and {count} more",
    "chart.none": "No data for this chart.",
    "chart.shaded": "The shaded band is the pilot period ({start} to {end}).",
    "chart.forest": "Dots are estimates, bars their intervals; the dashed line is the "
    "threshold, the grey line zero. Grey rows are exploratory.",
    "chart.threshold": "threshold",
    "chart.pilot": "pilot",
    "chart.points": "points per month",
    "chart.liability": "liability",
    # column headers
    "col.arm": "Arm",
    "col.baseline": "Against",
    "col.programme": "Programme",
    "col.uplift": "Uplift",
    "col.interval": "Interval",
    "col.estimate": "Estimate per unit and week",
    "col.p_value": "p-value",
    "col.p_adjusted": "Adjusted p-value",
    "col.n_units": "Units",
    "col.method": "Method",
    "col.status": "Status",
    "col.figure": "Figure",
    "col.quantity": "Quantity",
    "col.mean": "Mean",
    "col.p10": "P10",
    "col.p50": "P50 (median)",
    "col.p90": "P90",
    "col.row": "Row",
    "col.group": "Group",
    "col.exploratory": "Exploratory",
    "col.before": "Before the pilot",
    "col.during": "During the pilot",
    "col.change": "Change",
    "col.letter": "Criterion",
    "col.threshold": "Threshold",
    "col.result": "Result",
    "col.stance": "Argues",
    "col.reason": "Reason",
    "col.check": "Check",
    "col.metric": "Metric",
    "col.margin": "Allowed margin",
    "col.kind": "Kind",
    "col.bound": "Worst plausible change",
    "col.units": "Units",
    "col.covariate": "Covariate",
    "col.std_diff": "Standardized difference",
    "col.per_arm": "Units per arm",
    "col.weeks": "Weeks",
    "col.mde": "Minimum detectable effect",
    "col.fpr": "False positive rate",
    "col.break_even": "Break-even uplift",
    "col.parameter": "Assumption",
    "col.prior": "Before the pilot",
    "col.posterior": "After the pilot",
    "col.scenario": "Scenario",
    "col.profit": "Profit",
    "col.roi": "ROI",
    "col.wave": "Wave",
    "col.stores": "Stores",
    "col.start": "Earliest start",
    "col.gate": "Gate",
    "col.regions": "Regions",
    "col.item": "Item",
    "col.value": "Value",
    "col.file": "File",
    "col.sha256": "SHA-256",
    "col.month": "Month",
    # projection rows
    "proj.cost": "Programme cost",
    "proj.profit": "Profit",
    "proj.roi": "Return on investment",
    "proj.revenue": "Baseline revenue",
    "proj.points_issued": "Points issued",
    "proj.points_redeemed": "Points redeemed",
    "proj.points_expired": "Points expired",
    "proj.liability_end": "Liability at the end (points owed)",
    "proj.breakage": "Breakage (value never redeemed)",
    "proj.break_even": "Break-even uplift",
    "proj.note": "P10 and P90: one chance in ten of less, one chance in ten of more.",
    "proj.none": "No full-rollout projection is available.",
    "proj.horizon": "{arm} ({programme}), over {months} months.",
    # weekly
    "weekly.none": "No weekly series is available (customer-level pilot or no data).",
    "weekly.table": "Mean weekly {metric} per unit",
    # uplift tables
    "uplift.arms": "Each variant against the control",
    "uplift.head": "Variants head to head",
    "uplift.forest": "Uplift by arm and by segment",
    "uplift.no_forest": "No uplift could be plotted.",
    "group.arm": "arm",
    "group.head_to_head": "head to head",
    "group.region": "region",
    "group.segment": "segment",
    # SMART
    "smart.none": "No SMART scorecard is available.",
    "smart.card": "{programme}: {verdict}",
    "smart.S": "Simple (few rules)",
    "smart.M": "Measurable (the customer sees what it is worth)",
    "smart.A": "Attainable (a reward within reach)",
    "smart.R": "Realistic (cost against revenue)",
    "smart.T": "Time-bound (a reward within the year)",
    "smart.verdict.pass": "passes",
    "smart.verdict.fail": "fails",
    "smart.verdict.incomplete": "incomplete",
    "smart.per_100": "{value} per 100",
    "smart.days": "{value} days",
    # checks
    "checks.reasons": "Every reason of the decision",
    "checks.guardrails": "Guardrails",
    "checks.quality": "Quality checks",
    "checks.no_guardrails": "No guardrail was set.",
    "checks.no_quality": "No quality check was run.",
    "kind.absolute": "absolute",
    "kind.relative": "relative",
    # reasons
    "reason.interval_above_threshold": "The uplift of {arm} lies between {low} and {high}, "
    "entirely above the threshold of {threshold}.",
    "reason.interval_below_threshold": "The uplift of {arm} lies between {low} and {high}, "
    "entirely below the threshold of {threshold}.",
    "reason.interval_straddles_threshold": "The uplift of {arm} lies between {low} and "
    "{high}, on both sides of the threshold of {threshold}: the pilot cannot tell yet.",
    "reason.guardrail_passed": "Guardrail on {metric} for {arm}: the worst plausible "
    "change, {bound}, stays within the allowed {margin}.",
    "reason.guardrail_failed": "Guardrail on {metric} for {arm}: the worst plausible "
    "change, {bound}, goes beyond the allowed {margin}.",
    "reason.guardrail_unknown": "The guardrail on {metric} for {arm} could not be checked.",
    "reason.roi_above_minimum": "The expected return on investment of {arm} at full "
    "rollout, {roi}, reaches the minimum of {min_roi}.",
    "reason.roi_below_minimum": "The expected return on investment of {arm} at full "
    "rollout, {roi}, falls short of the minimum of {min_roi}.",
    "reason.sample_ratio_ok": "The number of units in each arm matches the plan (p = {p_value}).",
    "reason.sample_ratio_mismatch": "The number of units in each arm does not match the "
    "plan (p = {p_value}): the assignment may have been broken.",
    "reason.balance_ok": "The arms were comparable before the pilot (largest "
    "standardized difference {max_std_diff}).",
    "reason.balance_poor": "The arms were not comparable before the pilot (largest "
    "standardized difference {max_std_diff}).",
    "reason.pre_trend_ok": "Treated and control units followed parallel trends before "
    "the pilot (p = {p_value}).",
    "reason.pre_trend_violated": "Treated and control units did not follow parallel "
    "trends before the pilot (p = {p_value}).",
    "reason.planned_weeks_reached": "The pilot has run its planned length: {weeks} of "
    "{planned} weeks.",
    "reason.planned_weeks_not_reached": "The pilot has run only {weeks} of its {planned} "
    "planned weeks.",
    "reason.sequential_boundary_crossed": "The result for {arm} crossed the early "
    "stopping boundary at look {look}.",
    "reason.expected_profit_go": "{arm} is expected to earn {expected_profit} at full rollout; the "
    "chance its uplift clears the break-even is {prob_above}, the chance of"
    " a large loss {prob_loss} (limit {max_loss_probability}).",
    "reason.expected_profit_open": "{arm} is expected to earn {expected_profit} at full rollout "
    "(chance of"
    " clearing the break-even {prob_above}, of a large loss {prob_loss}, "
    "limit {max_loss_probability}): not yet enough to go, and more weeks "
    "are worth their cost.",
    "reason.expected_profit_negative": "{arm} is expected to lose money at full rollout "
    "({expected_profit}); "
    "the chance its uplift clears the break-even is only {prob_above}, "
    "the chance of a large loss {prob_loss} (limit {max_loss_probability}).",
    "reason.loss_too_likely": "{arm} is expected to earn {expected_profit}, but the chance of a "
    "large"
    " loss, {prob_loss}, is above the limit of {max_loss_probability} "
    "(chance of clearing the break-even {prob_above}).",
    "reason.extend_worth": "{weeks} more weeks of pilot are worth {value} in a better decision, "
    "for a cost of {cost}.",
    "reason.extend_weeks": "About {weeks} more weeks should be enough to settle the decision.",
    "reason.extend_not_enough": "Even {weeks} more weeks would probably not settle the decision.",
    "reason.variant_preferred": "{arm} beats {other} by {difference} (between {low} and "
    "{high}, p = {p_value}).",
    "reason.variants_indistinguishable": "{arm} and {other} cannot be told apart: "
    "difference {difference} (between {low} and {high}, p = {p_value}).",
    # risks
    "risk.low_power": "The pilot can only detect uplifts of {mde} or more, above the "
    "threshold of {threshold} that matters.",
    "risk.interval_wide": "The interval for {arm} is wide, from {low} to {high}.",
    "risk.cost_overrun": "The cost of {arm} could reach {p90_cost} in the costly case, "
    "above the budget of {budget}.",
    "risk.loss_possible": "{arm} could lose money at full rollout: {p10_profit} in the "
    "pessimistic case.",
    "risk.liability_build_up": "{arm} builds up {liability} of unredeemed points owed to "
    "customers.",
    "risk.guardrail_close": "The guardrail on {metric} for {arm} is close to breaking: "
    "{bound} against an allowed {margin}.",
    "risk.few_units": "Only {n_units} units per arm: one unusual unit can sway the result.",
    "risk.assumption_dominated": "The projection for {arm} rests mostly on assumptions: "
    "the pilot carries only {weight} of the weight.",
    "risk.heterogeneity": "The uplift of {arm} differs a lot between {by} (I² = {i2}).",
    "risk.breakage_dependence": "The profit of {arm} relies on points never redeemed: "
    "breakage is {breakage_share} of the cost.",
    # quality checks
    "quality.sample_ratio.pass": "Units per arm match the plan (p = {p_value}).",
    "quality.sample_ratio.fail": "Units per arm do not match the plan (p = {p_value}).",
    "quality.sample_ratio.unknown": "The sample ratio could not be tested.",
    "quality.balance.pass": "Arms comparable before the pilot (largest standardized "
    "difference {max_std_diff}).",
    "quality.balance.fail": "Arms not comparable before the pilot (largest standardized "
    "difference {max_std_diff}).",
    "quality.balance.unknown": "The balance of the arms could not be checked.",
    "quality.pre_trend.pass": "Parallel trends before the pilot (p = {p_value}).",
    "quality.pre_trend.fail": "Trends before the pilot were not parallel (p = {p_value}).",
    "quality.pre_trend.unknown": "Parallel trends before the pilot could not be tested.",
    "quality.planned_weeks.pass": "Planned length reached: {weeks} of {planned} weeks.",
    "quality.planned_weeks.fail": "Planned length not reached: {weeks} of {planned} weeks.",
    "quality.planned_weeks.unknown": "The length of the pilot could not be checked.",
    "quality.sequential.pass": "{arm}: the early stopping boundary was crossed at look {look}.",
    "quality.sequential.fail": "{arm}: no early stopping boundary crossed (look {look}).",
    "quality.sequential.unknown": "{arm}: early stopping was not assessed.",
    # design
    "design.none": "No design summary is available.",
    "design.summary": "Design {method} by {unit}: {per_arm} units per arm, {weeks} weeks.",
    "design.mde_ok": "At this size the pilot detects {mde}, no more than the break-even "
    "uplift of {arm} ({break_even}).",
    "design.mde_short": "At this size the pilot only detects {mde}, more than the "
    "break-even uplift of {arm} ({break_even}).",
    "design.mde_unknown": "The minimum detectable effect of this design is not known.",
    "design.stores": "Units in each arm",
    "design.balance": "Balance before the pilot",
    "design.power": "Power: minimum detectable effect by length",
    "design.no_balance": "No balance table is available.",
    "design.no_power": "No power table is available.",
    # assumptions
    "assumptions.table": "Behavioural assumptions, before and after the pilot",
    "assumptions.none": "No assumption was recalibrated.",
    "assumptions.sensitivity": "Profit at full rollout for each uplift",
    "assumptions.no_sensitivity": "No sensitivity table is available.",
    "assumption.visit_uplift": "Visit uplift",
    "assumption.basket_uplift": "Basket uplift",
    "assumption.churn_reduction": "Churn reduction",
    "mean_sd": "{mean} (sd {sd})",
    "scenario.pilot_low": "Low end of the pilot interval",
    "scenario.pilot_estimate": "Pilot estimate",
    "scenario.pilot_high": "High end of the pilot interval",
    "scenario.break_even": "Break-even",
    # rollout
    "rollout.none": "No rollout plan (customer-level pilot).",
    "rollout.holdout": "{holdout} stores are held out as controls for the whole rollout.",
    "rollout.next_gate": "Next gate: {gate}.",
    "rollout.no_gate": "There is no further gate.",
    "stage.not_frozen": "The assignment is not frozen yet.",
    "stage.before_test": "The assignment is frozen; the test period has not started.",
    "stage.running": "The test period is running.",
    "stage.complete": "The test period is complete.",
    "gate.frozen_assignment": "frozen assignment",
    "gate.go_on": "GO on {wave}",
    # reproducibility
    "repro.tool_version": "Tool version",
    "repro.pilot_version": "Pilot version",
    "repro.design_hash": "Design hash",
    "repro.data_fingerprint": "Data fingerprint",
    "repro.seed": "Seed",
    "repro.generated_at": "Generated at",
    "repro.schema_version": "Document schema",
}
