"""The run rules both kinds of run share (``incentives.run_rules``), each checked by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import incentives
from incentives.inputs import Claim
from incentives.run_rules import (DUPLICATE_PLACES, NO_MDF_PROGRAM, RunEngine, budget_note, coverage_text,
                                  duplicate_message, duplicate_results, orphan_claim_results,
                                  place_text, unpack_record)


def claim(claim_id: str, partner_id: str = "P1", period: str = "2027-Q1", program_id: str | None = None) -> Claim:
    return Claim(claim_id, partner_id, period, "event", Decimal("100"), None, None, True, program_id)


def test_a_place_is_a_file_line_or_an_api_record_number() -> None:
    assert place_text(12, None) == "line 12"
    assert place_text(None, 3) == "record 3"


def test_a_duplicate_message_lists_the_first_places_and_counts_the_rest() -> None:
    key = ("P1", "2027-Q1")
    assert duplicate_message(key, ["line 2", "line 9"], 2) == (
        "duplicate record for partner P1 and period 2027-Q1 (line 2, line 9)")
    places = [f"line {n}" for n in range(2, 9)]  # 7 places given; DUPLICATE_PLACES (5) listed, 8 - 5 = 3 counted
    assert DUPLICATE_PLACES == 5
    assert duplicate_message(key, places, 8) == (
        "duplicate record for partner P1 and period 2027-Q1 "
        "(8 records: line 2, line 3, line 4, line 5, line 6 and 3 more)")


def test_duplicate_records_give_one_error_per_record_and_program() -> None:
    results = duplicate_results(("P1", "2027-Q1"), ["line 2", "line 3"], 2, ["tier", "mdf"])
    # 2 records x 2 programs = 4 error results, keyed program#n
    assert list(results) == ["tier#0", "tier#1", "mdf#0", "mdf#1"]
    assert {result.status for result in results.values()} == {"error"}
    assert results["mdf#1"].errors == ["duplicate record for partner P1 and period 2027-Q1 (line 2, line 3)"]
    assert results["mdf#1"].program_id == "mdf"


def test_claims_without_a_record_go_to_the_programs_they_name_or_else_every_mdf_program() -> None:
    key = ("P1", "2027-Q1")
    named = orphan_claim_results(key, [claim("C2", program_id="b"), claim("C1", program_id="a"), claim("C3")],
                                 ["a", "b"])
    assert list(named) == ["a", "b"]  # the names claims give, sorted; C3 names none and counts for each
    assert named["a"].errors == ["claims C1, C3 have no facts record for partner P1 and period 2027-Q1"]
    assert named["b"].errors == ["claims C2, C3 have no facts record for partner P1 and period 2027-Q1"]
    unnamed = orphan_claim_results(key, [claim("C1")], ["co_marketing", "partner_fund"])
    assert list(unnamed) == ["co_marketing", "partner_fund"]
    assert list(orphan_claim_results(key, [claim("C1")], [])) == [NO_MDF_PROGRAM]


def test_coverage_notes_are_sorted_by_program_and_period() -> None:
    assert coverage_text({("tier", "2027-Q2"): 3, ("mdf", "2027-Q1"): 1}) == [
        "mdf: no version effective in period 2027-Q1 (1 records without a result)",
        "tier: no version effective in period 2027-Q2 (3 records without a result)"]


def test_a_budget_note_names_the_budget_and_the_factor_to_six_places() -> None:
    class Budgeted:
        budget = Decimal("50000")

    # 50000 / 62500 = 0.8 exactly, printed to six places
    assert budget_note("goal", 2, "2027-Q1", Budgeted(), Decimal("0.8")) == (  # type: ignore[arg-type]
        "goal v2 2027-Q1: budget 50000 applied, totals scaled by 0.800000")


def test_a_record_unpacks_to_its_keys_facts_and_a_copy_of_its_problems() -> None:
    partner_id, period, facts, problems = unpack_record({"partner_id": "P1", "period": "2027-Q1", "revenue": "10"})
    assert (partner_id, period, facts["revenue"], problems) == ("P1", "2027-Q1", Decimal("10"), [])


def test_the_engine_is_what_the_streaming_run_asks_for() -> None:
    engine = incentives.Engine(incentives.load_programs(Path(__file__).parent.parent / "programs"))
    needed = [name for name in dir(RunEngine) if not name.startswith("_")] + ["reads_history"]
    assert [name for name in needed if not hasattr(engine, name)] == []
