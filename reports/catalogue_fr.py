"""French wording of the report (same keys and ``{fields}`` as :mod:`reports.catalogue_en`).

Plain spaces before ``:`` ``;`` ``?`` ``!`` are turned into no-break spaces by
:func:`reports.i18n.text`.
"""

FR: dict[str, str] = {
    # page and sections
    "title": "Rapport de décision : {pilot}",
    "generated": "Produit le {date}",
    "section.summary": "Décision",
    "section.weekly": "{metric} par semaine : magasins testés et témoins",
    "section.uplift": "Effet par variante et par segment",
    "section.cost": "Coût du déploiement complet",
    "section.smart": "Grille SMART",
    "section.checks": "Motifs, garde-fous et contrôles de qualité",
    "section.design": "Plan du pilote",
    "section.assumptions": "Hypothèses et sensibilité",
    "section.rollout": "Plan de déploiement",
    "section.reproducibility": "Reproductibilité",
    "summary.uplifts": "Effet de chaque variante",
    "summary.interval": "Intervalles de confiance à {level}.",
    "summary.interval_simultaneous": "Intervalles de confiance à {level} chacun, pour couvrir "
    "ensemble les {arms} variantes à {total} (Bonferroni) : ceux que lit la décision.",
    "summary.rollout": "Au déploiement complet, sur {months} mois",
    "summary.money_arm": "{arm} : effet sur les ventes totales {estimate} ({low} à "
    "{high}) ; a priori {prior} (écart-type {prior_sd}, hypothèses du programme), "
    "après le pilote {posterior} (écart-type {posterior_sd}).",
    "summary.log_scale": "    l'estimation à poids égal par magasin (échelle log) "
    "diffère : {estimate} ({low} à {high}).",
    "summary.risks": "Les trois principaux risques",
    "summary.no_risks": "Aucun risque notable n'a été relevé.",
    "summary.more": "Le détail suit.",
    # banner
    "verdict.GO": "GO",
    "verdict.NO-GO": "NO-GO",
    "verdict.EXTEND": "PROLONGER",
    "headline.GO": "Déployer {arm}.",
    "headline.GO_none": "Déployer le programme.",
    "headline.NO-GO": "Ne pas déployer.",
    "headline.EXTEND": "Poursuivre le pilote {weeks} semaines de plus avant de décider.",
    "headline.EXTEND_none": "Poursuivre le pilote avant de décider.",
    "confidence": "{arm} face à l'autre variante : confiance {confidence} "
    "(1 moins la valeur p ajustée de Holm de leur comparaison directe).",
    "threshold": "L'effet doit dépasser {threshold} ({source}).",
    "threshold_none": "Aucun seuil n'a pu être fixé pour l'effet.",
    "threshold_source.break_even": "l'effet qui rentabilise les programmes",
    "threshold_source.min_uplift": "l'effet minimal fixé pour le pilote",
    "no_reason": "Aucun motif n'a été enregistré pour cette décision.",
    # plain-words uplifts
    "uplift.interval": "{arm} : entre {low} et {high} de {metric} en plus par {unit} "
    "(estimation centrale {estimate}).",
    "uplift.interval_less": "{arm} : entre {high_abs} et {low_abs} de {metric} en moins par "
    "{unit} (estimation centrale {estimate}).",
    "uplift.interval_change": "{arm} : une variation des {metric} par {unit} comprise entre "
    "{low} et {high} (estimation centrale {estimate}).",
    "uplift.point": "{arm} : {estimate} de {metric} en plus par {unit}, sans intervalle.",
    "uplift.none": "{arm} : l'effet n'a pas pu être estimé (statut {status}).",
    "metric.sales": "ventes",
    "metric.visits": "visites",
    "metric.basket_size": "panier moyen",
    "metric.active_customers": "clients actifs",
    "metric.gross_margin_rate": "taux de marge brute",
    "metric.programme_cost_share": "part du coût du programme",
    "metric.returns_rate": "taux de retours",
    "unit.points": "{value} pt",
    "unit.store": "magasin",
    "unit.region": "région",
    "unit.customer": "client",
    "unit.unit": "unité",
    "by.region": "régions",
    "by.segment": "segments",
    # generic words
    "na": "n.d.",
    "yes": "oui",
    "no": "non",
    "result.pass": "réussi",
    "result.fail": "échoué",
    "result.unknown": "inconnu",
    "stance.for": "pour",
    "stance.against": "contre",
    "stance.open": "incertain",
    "more_items": "et {count} de plus",
    "chart.none": "Pas de données pour ce graphique.",
    "chart.shaded": "La bande grisée est la période du pilote (du {start} au {end}).",
    "chart.forest": "Les points sont les estimations, les barres leurs intervalles ; la "
    "ligne en tirets est le seuil, la ligne grise zéro. Les lignes grises sont "
    "exploratoires.",
    "chart.threshold": "seuil",
    "chart.pilot": "pilote",
    "chart.points": "points par mois",
    "chart.liability": "encours",
    # column headers
    "col.arm": "Variante",
    "col.baseline": "Face à",
    "col.programme": "Programme",
    "col.uplift": "Effet",
    "col.interval": "Intervalle",
    "col.estimate": "Estimation par unité et semaine",
    "col.p_value": "Valeur p",
    "col.p_adjusted": "Valeur p ajustée",
    "col.n_units": "Unités",
    "col.method": "Méthode",
    "col.status": "Statut",
    "col.figure": "Valeur",
    "col.quantity": "Grandeur",
    "col.mean": "Moyenne",
    "col.p10": "P10",
    "col.p50": "P50 (médiane)",
    "col.p90": "P90",
    "col.row": "Ligne",
    "col.group": "Groupe",
    "col.exploratory": "Exploratoire",
    "col.before": "Avant le pilote",
    "col.during": "Pendant le pilote",
    "col.change": "Évolution",
    "col.letter": "Critère",
    "col.threshold": "Seuil",
    "col.result": "Résultat",
    "col.stance": "Plaide",
    "col.reason": "Motif",
    "col.check": "Contrôle",
    "col.metric": "Indicateur",
    "col.margin": "Marge tolérée",
    "col.kind": "Nature",
    "col.bound": "Pire évolution plausible",
    "col.units": "Unités",
    "col.covariate": "Covariable",
    "col.std_diff": "Différence standardisée",
    "col.per_arm": "Unités par variante",
    "col.weeks": "Semaines",
    "col.mde": "Effet minimal détectable",
    "col.fpr": "Taux de faux positifs",
    "col.break_even": "Effet de rentabilité",
    "col.parameter": "Hypothèse",
    "col.prior": "Avant le pilote",
    "col.posterior": "Après le pilote",
    "col.scenario": "Scénario",
    "col.profit": "Bénéfice",
    "col.roi": "Rentabilité",
    "col.wave": "Vague",
    "col.stores": "Magasins",
    "col.start": "Début au plus tôt",
    "col.gate": "Condition",
    "col.regions": "Régions",
    "col.item": "Élément",
    "col.value": "Valeur",
    "col.file": "Fichier",
    "col.sha256": "SHA-256",
    "col.month": "Mois",
    # projection rows
    "proj.cost": "Coût du programme",
    "proj.profit": "Bénéfice",
    "proj.roi": "Retour sur investissement",
    "proj.revenue": "Chiffre d'affaires de référence",
    "proj.points_issued": "Points émis",
    "proj.points_redeemed": "Points utilisés",
    "proj.points_expired": "Points expirés",
    "proj.liability_end": "Encours final (points dus)",
    "proj.breakage": "Points jamais utilisés (valeur)",
    "proj.break_even": "Effet de rentabilité",
    "proj.note": "P10 et P90 : une chance sur dix d'être en dessous, une sur dix d'être au-dessus.",
    "proj.none": "Aucune projection du déploiement complet n'est disponible.",
    "proj.horizon": "{arm} ({programme}), sur {months} mois.",
    # weekly
    "weekly.none": "Pas de série hebdomadaire (pilote au niveau client ou pas de données).",
    "weekly.table": "Moyenne par unité et par semaine : {metric}",
    # uplift tables
    "uplift.arms": "Chaque variante face au groupe témoin",
    "uplift.head": "Variantes face à face",
    "uplift.forest": "Effet par variante et par segment",
    "uplift.no_forest": "Aucun effet n'a pu être représenté.",
    "group.arm": "variante",
    "group.head_to_head": "face-à-face",
    "group.region": "région",
    "group.segment": "segment",
    # SMART
    "smart.none": "Aucune grille SMART n'est disponible.",
    "smart.card": "{programme} : {verdict}",
    "smart.S": "Simple (peu de règles)",
    "smart.M": "Mesurable (le client voit ce qu'il gagne)",
    "smart.A": "Atteignable (une récompense à portée)",
    "smart.R": "Réaliste (coût rapporté au chiffre d'affaires)",
    "smart.T": "Temporel (une récompense dans l'année)",
    "smart.verdict.pass": "conforme",
    "smart.verdict.fail": "non conforme",
    "smart.verdict.incomplete": "incomplète",
    "smart.per_100": "{value} pour 100",
    "smart.days": "{value} jours",
    # checks
    "checks.reasons": "Tous les motifs de la décision",
    "checks.guardrails": "Garde-fous",
    "checks.quality": "Contrôles de qualité",
    "checks.no_guardrails": "Aucun garde-fou n'a été fixé.",
    "checks.no_quality": "Aucun contrôle de qualité n'a été fait.",
    "kind.absolute": "absolue",
    "kind.relative": "relative",
    # reasons
    "reason.interval_above_threshold": "L'effet de {arm} se situe entre {low} et {high}, "
    "tout entier au-dessus du seuil de {threshold}.",
    "reason.interval_below_threshold": "L'effet de {arm} se situe entre {low} et {high}, "
    "tout entier en dessous du seuil de {threshold}.",
    "reason.interval_straddles_threshold": "L'effet de {arm} se situe entre {low} et "
    "{high}, de part et d'autre du seuil de {threshold} : le pilote ne permet pas encore "
    "de trancher.",
    "reason.guardrail_passed": "Garde-fou sur {metric} pour {arm} : la pire évolution "
    "plausible, {bound}, reste dans la marge tolérée de {margin}.",
    "reason.guardrail_failed": "Garde-fou sur {metric} pour {arm} : la pire évolution "
    "plausible, {bound}, dépasse la marge tolérée de {margin}.",
    "reason.guardrail_unknown": "Le garde-fou sur {metric} pour {arm} n'a pas pu être vérifié.",
    "reason.roi_above_minimum": "Le retour sur investissement attendu de {arm} au "
    "déploiement complet, {roi}, atteint le minimum de {min_roi}.",
    "reason.roi_below_minimum": "Le retour sur investissement attendu de {arm} au "
    "déploiement complet, {roi}, reste sous le minimum de {min_roi}.",
    "reason.sample_ratio_ok": "Le nombre d'unités de chaque variante est conforme au plan "
    "(p = {p_value}).",
    "reason.sample_ratio_mismatch": "Le nombre d'unités de chaque variante n'est pas "
    "conforme au plan (p = {p_value}) : l'affectation a peut-être été rompue.",
    "reason.balance_ok": "Les variantes étaient comparables avant le pilote (plus grande "
    "différence standardisée {max_std_diff}).",
    "reason.balance_poor": "Les variantes n'étaient pas comparables avant le pilote (plus "
    "grande différence standardisée {max_std_diff}).",
    "reason.pre_trend_ok": "Les unités testées et témoins évoluaient en parallèle avant le "
    "pilote (p = {p_value}).",
    "reason.pre_trend_violated": "Les unités testées et témoins n'évoluaient pas en "
    "parallèle avant le pilote (p = {p_value}).",
    "reason.planned_weeks_reached": "Le pilote a atteint sa durée prévue : {weeks} "
    "semaines sur {planned}.",
    "reason.planned_weeks_not_reached": "Le pilote n'a duré que {weeks} semaines sur les "
    "{planned} prévues.",
    "reason.sequential_boundary_crossed": "Le résultat de {arm} a franchi la borne "
    "d'arrêt anticipé au point d'étape {look}.",
    "reason.expected_profit_go": "{arm} devrait rapporter {expected_profit} au déploiement complet "
    "; la "
    "probabilité que son effet dépasse le point mort est de {prob_above}, "
    "celle d'une forte perte de {prob_loss} (limite "
    "{max_loss_probability}).",
    "reason.expected_profit_open": "{arm} devrait rapporter {expected_profit} au déploiement "
    "complet "
    "(probabilité de dépasser le point mort {prob_above}, d'une forte perte"
    " {prob_loss}, limite {max_loss_probability}) : pas encore assez pour y"
    " aller, et des semaines de plus valent leur coût.",
    "reason.expected_profit_negative": "{arm} devrait perdre de l'argent au déploiement complet "
    "({expected_profit}) ; la probabilité que son effet dépasse le point "
    "mort n'est que de {prob_above}, celle d'une forte perte de {prob_loss} (limite "
    "{max_loss_probability}).",
    "reason.loss_too_likely": "{arm} devrait rapporter {expected_profit}, mais la probabilité "
    "d'une "
    "forte perte, {prob_loss}, dépasse la limite de {max_loss_probability} "
    "(probabilité de dépasser le point mort {prob_above}).",
    "reason.extend_worth": "{weeks} semaines de pilote de plus valent {value} en meilleure "
    "décision, pour un coût de {cost}.",
    "reason.extend_weeks": "Environ {weeks} semaines de plus devraient suffire pour trancher.",
    "reason.extend_not_enough": "Même {weeks} semaines de plus ne suffiraient sans doute "
    "pas pour trancher.",
    "reason.variant_preferred": "{arm} fait mieux que {other} de {difference} (entre "
    "{low} et {high}, p = {p_value}).",
    "reason.variants_indistinguishable": "{arm} et {other} ne se distinguent pas : écart "
    "de {difference} (entre {low} et {high}, p = {p_value}).",
    # risks
    "risk.low_power": "Le pilote ne détecte que des effets d'au moins {mde}, au-delà du "
    "seuil utile de {threshold}.",
    "risk.interval_wide": "L'intervalle de {arm} est large, de {low} à {high}.",
    "risk.cost_overrun": "Le coût de {arm} pourrait atteindre {p90_cost} dans le cas "
    "coûteux, au-delà du budget de {budget}.",
    "risk.loss_possible": "{arm} pourrait perdre de l'argent au déploiement complet : "
    "{p10_profit} dans le cas pessimiste.",
    "risk.liability_build_up": "{arm} accumule {liability} de points non utilisés dus aux clients.",
    "risk.guardrail_close": "Le garde-fou sur {metric} pour {arm} est près d'être "
    "franchi : {bound} pour une marge tolérée de {margin}.",
    "risk.few_units": "Seulement {n_units} unités par variante : une unité atypique peut "
    "faire basculer le résultat.",
    "risk.assumption_dominated": "La projection de {arm} repose surtout sur des "
    "hypothèses : le pilote ne pèse que pour {weight}.",
    "risk.heterogeneity": "L'effet de {arm} varie fortement selon les {by} (I² = {i2}).",
    "risk.breakage_dependence": "Le bénéfice de {arm} dépend des points jamais utilisés, "
    "qui représentent {breakage_share} du coût.",
    # quality checks
    "quality.sample_ratio.pass": "Unités par variante conformes au plan (p = {p_value}).",
    "quality.sample_ratio.fail": "Unités par variante non conformes au plan (p = {p_value}).",
    "quality.sample_ratio.unknown": "La répartition des unités n'a pas pu être testée.",
    "quality.balance.pass": "Variantes comparables avant le pilote (plus grande "
    "différence standardisée {max_std_diff}).",
    "quality.balance.fail": "Variantes non comparables avant le pilote (plus grande "
    "différence standardisée {max_std_diff}).",
    "quality.balance.unknown": "L'équilibre des variantes n'a pas pu être vérifié.",
    "quality.pre_trend.pass": "Évolutions parallèles avant le pilote (p = {p_value}).",
    "quality.pre_trend.fail": "Évolutions non parallèles avant le pilote (p = {p_value}).",
    "quality.pre_trend.unknown": "Le parallélisme avant le pilote n'a pas pu être testé.",
    "quality.planned_weeks.pass": "Durée prévue atteinte : {weeks} semaines sur {planned}.",
    "quality.planned_weeks.fail": "Durée prévue non atteinte : {weeks} semaines sur {planned}.",
    "quality.planned_weeks.unknown": "La durée du pilote n'a pas pu être vérifiée.",
    "quality.sequential.pass": "{arm} : borne d'arrêt anticipé franchie au point d'étape {look}.",
    "quality.sequential.fail": "{arm} : aucune borne d'arrêt anticipé franchie (point "
    "d'étape {look}).",
    "quality.sequential.unknown": "{arm} : arrêt anticipé non évalué.",
    # design
    "design.none": "Aucun résumé du plan n'est disponible.",
    "design.summary": "Plan {method} par {unit} : {per_arm} unités par variante, {weeks} semaines.",
    "design.mde_ok": "À cette taille, le pilote détecte {mde}, pas plus que l'effet de "
    "rentabilité de {arm} ({break_even}).",
    "design.mde_short": "À cette taille, le pilote ne détecte que {mde}, plus que l'effet "
    "de rentabilité de {arm} ({break_even}).",
    "design.mde_unknown": "L'effet minimal détectable de ce plan n'est pas connu.",
    "design.stores": "Unités de chaque variante",
    "design.balance": "Équilibre avant le pilote",
    "design.power": "Puissance : effet minimal détectable selon la durée",
    "design.no_balance": "Aucune table d'équilibre n'est disponible.",
    "design.no_power": "Aucune table de puissance n'est disponible.",
    # assumptions
    "assumptions.table": "Hypothèses de comportement, avant et après le pilote",
    "assumptions.none": "Aucune hypothèse n'a été recalibrée.",
    "assumptions.sensitivity": "Bénéfice du déploiement complet selon l'effet",
    "assumptions.no_sensitivity": "Aucune table de sensibilité n'est disponible.",
    "assumption.visit_uplift": "Hausse des visites",
    "assumption.basket_uplift": "Hausse du panier",
    "assumption.churn_reduction": "Baisse de l'attrition",
    "mean_sd": "{mean} (écart-type {sd})",
    "scenario.pilot_low": "Bas de l'intervalle du pilote",
    "scenario.pilot_estimate": "Estimation du pilote",
    "scenario.pilot_high": "Haut de l'intervalle du pilote",
    "scenario.break_even": "Point mort",
    # rollout
    "rollout.none": "Pas de plan de déploiement (pilote au niveau client).",
    "rollout.holdout": "{holdout} magasins restent témoins pendant tout le déploiement.",
    "rollout.next_gate": "Prochaine condition : {gate}.",
    "rollout.no_gate": "Il n'y a pas d'autre condition.",
    "stage.not_frozen": "L'affectation n'est pas encore figée.",
    "stage.before_test": "L'affectation est figée ; la période de test n'a pas commencé.",
    "stage.running": "La période de test est en cours.",
    "stage.complete": "La période de test est terminée.",
    "gate.frozen_assignment": "affectation figée",
    "gate.go_on": "GO sur {wave}",
    # reproducibility
    "repro.tool_version": "Version de l'outil",
    "repro.pilot_version": "Version du pilote",
    "repro.design_hash": "Empreinte du plan",
    "repro.data_fingerprint": "Empreinte des données",
    "repro.seed": "Graine",
    "repro.generated_at": "Produit le",
    "repro.schema_version": "Schéma du document",
}
