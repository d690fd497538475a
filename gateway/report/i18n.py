"""The report's words, in French (default: the DPO reads French) and English."""

from __future__ import annotations

LANGS = ("fr", "en")

_T: dict[str, tuple[str, str]] = {
    "title": ("Rapport de conformité des appels sortants", "Outbound calling compliance report"),
    "period": ("Période", "Period"),
    "campaign": ("Campagne", "Campaign"),
    "all_campaigns": ("toutes", "all"),
    "generated": ("Établi le", "Generated"),
    "zone": ("Fuseau des jours", "Days in zone"),
    "source": ("Piste d'audit", "Audit trail"),
    "summary": ("Synthèse", "Summary"),
    "decisions": ("Décisions", "Decisions"),
    "allowed": ("Autorisés", "Allowed"),
    "blocked": ("Bloqués", "Blocked"),
    "distinct_numbers": ("Numéros distincts (estimation)", "Distinct numbers (estimate)"),
    "superseding": ("Décisions comptées par un enregistrement rectificatif",
                    "Decisions counted by a superseding record"),
    "superseded": ("Enregistrements remplacés (non comptés)", "Superseded records (not counted)"),
    "unresolved": ("Rectificatifs au-delà de la limite (décision peut-être comptée deux fois)",
                   "Superseding records beyond the bound (decision may be counted twice)"),
    "supersede_note": (
        "Quand l'enregistrement d'audit d'un appel n'a pas pu être écrit à temps, l'appel a "
        "été traité selon le mode de défaillance de la campagne (bloqué, sauf fail-open) et "
        "un enregistrement rectificatif, de même identifiant de décision, le dit. Chaque "
        "décision est comptée une fois, d'après son dernier enregistrement.",
        "When a call's audit record could not be written in time, the call was answered by "
        "the campaign's fail mode (blocked unless fail-open) and a superseding record with "
        "the same decision id says so. Each decision is counted once, by its last record."),
    "per_day": ("Décisions par jour et par verdict", "Decisions per day by verdict"),
    "day": ("Jour", "Day"),
    "reasons": ("Motifs de blocage", "Block reasons"),
    "reason": ("Motif", "Reason"),
    "count": ("Nombre", "Count"),
    "night": ("Appels arrêtés hors des horaires légaux", "Calls stopped outside legal hours"),
    "night_stopped": ("Arrêtés (hors horaires ou jour férié)",
                      "Stopped (outside hours or public holiday)"),
    "night_placed": ("Passés malgré tout (mode observation ou fail-open)",
                     "Placed anyway (shadow mode or fail-open)"),
    "hour_chart": ("Heure locale de l'appelé : appels autorisés et arrêtés",
                   "Callee's local hour: calls allowed and stopped"),
    "hour": ("Heure", "Hour"),
    "attempts": ("Tentatives par numéro au regard du plafond",
                 "Attempts per number against the cap"),
    "attempt_rank": ("Rang de la tentative (dans la fenêtre)", "Attempt rank (in the window)"),
    "calls_placed": ("Appels autorisés", "Calls allowed"),
    "cap": ("Plafond", "Cap"),
    "frequency_blocks": ("Bloqués par le plafond", "Blocked by the cap"),
    "over_cap": ("Autorisés au-delà du plafond", "Allowed beyond the cap"),
    "abandon": ("Taux d'appels abandonnés par campagne", "Abandoned-call ratio per campaign"),
    "abandoned": ("Abandonnés / décrochés (dernier relevé)", "Abandoned / answered (last seen)"),
    "ratio_max": ("Taux maximal relevé", "Highest ratio seen"),
    "limit": ("Limite", "Limit"),
    "abandon_blocks": ("Bloqués (taux d'abandon)", "Blocked (abandon rate)"),
    "consent": ("Consentements et fraîcheur des listes", "Consent and list freshness"),
    "basis": ("Fondement des appels autorisés", "Basis of allowed calls"),
    "basis_consent": ("Consentement", "Consent"),
    "basis_contract": ("Contrat en cours", "Contract in progress"),
    "basis_none": ("Sans consentement requis", "No consent required"),
    "list": ("Liste", "List"),
    "version": ("Version", "Version"),
    "age_max": ("Âge maximal", "Highest age"),
    "age_last": ("Âge au dernier appel", "Age at last call"),
    "list_stale": ("Bloqués (liste périmée)", "Blocked (stale list)"),
    "shadow": ("Décisions en observation et en fail-open", "Shadow and fail-open decisions"),
    "shadow_total": ("En observation (shadow)", "Shadow"),
    "shadow_block": ("dont bloquées par le moteur", "of which the engine blocked"),
    "fail_open": ("Fail-open (décision impossible, appel passé)",
                  "Fail-open (no decision, call placed)"),
    "chain": ("Vérification de la chaîne d'intégrité", "Chain verification"),
    "chain_ok": ("Intègre : aucune anomalie", "Intact: no problem"),
    "chain_ko": ("ANOMALIES DÉTECTÉES", "PROBLEMS FOUND"),
    "records": ("Enregistrements lus", "Records read"),
    "problems": ("Anomalies", "Problems"),
    "first_record": ("Premier enregistrement", "First record"),
    "last_record": ("Dernier enregistrement", "Last record"),
    "instance": ("Instance", "Instance"),
    "none": ("aucun", "none"),
    "unreadable": ("Enregistrements illisibles", "Unreadable records"),
    "notes": ("Remarques", "Notes"),
}


def words(lang: str) -> dict[str, str]:
    if lang not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}")
    i = LANGS.index(lang)
    return {k: v[i] for k, v in _T.items()}
