"""Program loading: exact numbers, every problem located as file:line:col, cross-field and cross-file checks."""

from decimal import Decimal as D

import pytest

import incentives
from conftest import program_text
from incentives.yamlsource import TextSpan

TIERS = """
tiers:
  qualify_on: revenue
  levels:
    - {name: Silver, from: 100000, rate: 2%}
    - {name: Gold,   from: 500000, rate: 0.035}
"""


def located(error_problems, path):
    """Problems as 'line:col: message' with the file name checked and stripped."""
    return [str(p).removeprefix(f"{path}:") for p in error_problems]


def load_errors(path):
    with pytest.raises(incentives.ProgramError) as caught:
        incentives.load_programs(path)
    return located(caught.value.problems, path)


def test_numbers_are_exact_decimals_and_percentages(write_program):
    path = write_program(program_text(TIERS))
    [loaded] = incentives.load_programs(path)
    levels = loaded.program.tiers.levels
    assert levels[0].rate == D("0.02") and levels[1].rate == D("0.035")
    assert type(levels[1].rate) is D and type(levels[0].from_) in (int, D)
    assert loaded.sha256 == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_exponent_numbers_are_read_as_yaml_1_2_reads_them(write_program):
    path = write_program(program_text("""
        tiers:
          qualify_on: revenue
          levels:
            - {name: Silver, from: 1e5, rate: 2%}
            - {name: Gold,   from: 2.5E6, rate: 35e-3}
        bonuses:
          - {id: logo, when: "revenue > 0", amount: 1e3}
        cap: 1.5e+6
        """))
    [loaded] = incentives.load_programs(path)
    silver, gold = loaded.program.tiers.levels
    assert (silver.from_, gold.from_, gold.rate) == (D("1E+5"), D("2.5E+6"), D("0.035"))
    assert loaded.program.cap == D("1500000")
    assert loaded.program.bonuses[0].amount.text == "1000"  # what the audit formula shows, not 1E+3


def test_every_problem_of_a_file_is_located(write_program):
    path = write_program(program_text("""
        tiers:
          qualify_on: revenue
          levles: []
          levels:
            - {name: Silver, from: 100000, rate: 2%, requires: "certifications.sales >= 1 and sum(x) > 1"}
            - {name: Platinum, from: 2000000, rate: 150%}
        bonuses:
          - {id: bad, when: "nps >", amount: 5}
        cap: -5
        """))
    assert load_errors(path) == [
        "10:3: unknown key 'levles'; did you mean 'levels'?",
        "12:87: invalid expression: unknown function 'sum'; allowed: abs, if, max, min",
        "13:45: rate: must be at most 100%, found '150%'",
        "15:27: invalid expression: syntax error: invalid syntax",
        "16:6: cap: must be at least 0, found -5",
    ]


def test_missing_key_and_wrong_literal(write_program):
    path = write_program("id: x\nname: X\nkind: tire\nversion: 1\ncurrency: USD\nperiod: quarter\n" + TIERS)
    assert load_errors(path) == [
        "1:1: missing required key 'effective'",
        "3:7: kind: Input should be 'tier', 'goal' or 'mdf', found 'tire'",
    ]


def test_duplicate_keys_are_rejected(write_program):
    path = write_program(program_text(TIERS, "version: 2"))
    assert load_errors(path) == ["13:1: duplicate key 'version' (first defined at line 4)"]


def test_tabs_are_rejected_with_a_hint(write_program):
    path = write_program("id: t\n\tname: x\n")
    assert load_errors(path) == ["2:1: while scanning for the next token found character '\\t' that cannot "
                                 "start any token (YAML indentation must use spaces, not tabs)"]


def test_tier_levels_must_ascend_and_incremental_pays_on_qualify_on(write_program):
    path = write_program(program_text("""
        tiers:
          qualify_on: revenue
          pay_on: services_revenue
          mode: incremental
          levels:
            - {name: Silver, from: 100000, rate: 2%}
            - {name: Gold,   from: 100000, rate: 3%}
        """))
    assert load_errors(path) == [
        "14:28: tier levels must have strictly ascending 'from': Gold (100000) is not above Silver (100000)",
        "10:11: incremental mode pays each band on its own width, so 'pay_on' must equal 'qualify_on' ('revenue')",
    ]


def test_goal_weights_and_curve_order(write_program):
    path = write_program(program_text("""
        goals:
          targets:
            - {id: revenue, metric: revenue,   target: quota, weight: 70%}
            - {id: logos,   metric: new_logos, target: 4,     weight: 20%}
          payout:
            on: target_incentive
            curve:
              - {attainment: 100%, factor: 100%}
              - {attainment: 80%,  factor: 50%}
        """, kind="goal"))
    assert load_errors(path) == [
        "9:3: goal weights must sum to 100%, they sum to 90%",
        "16:22: curve points must have strictly ascending 'attainment'",
    ]


def test_bonus_needs_exactly_one_of_multiplier_or_amount(write_program):
    path = write_program(program_text(TIERS, """
        bonuses:
          - {id: both, when: "nps >= 50", multiplier: 110%, amount: 5}
          - {id: neither, when: "nps >= 50"}
        """))
    assert load_errors(path) == [
        "14:5: bonus 'both' needs exactly one of 'multiplier' or 'amount'",
        "15:5: bonus 'neither' needs exactly one of 'multiplier' or 'amount'",
    ]


def test_section_must_match_kind(write_program):
    path = write_program(program_text(TIERS, kind="goal"))
    assert load_errors(path) == [
        "8:1: 'tiers' is not allowed in a 'goal' program (kind: goal takes 'goals')",
        "1:1: a 'goal' program needs a 'goals' section",
    ]


def test_overlapping_versions_are_an_error(write_program):
    first = write_program(program_text(TIERS), "v1.yaml")
    second = write_program(program_text(TIERS, version=2), "v2.yaml")
    with pytest.raises(incentives.ProgramError) as caught:
        incentives.load_programs([first, second])
    [problem] = caught.value.problems
    assert problem.file == str(second) and (problem.line, problem.column) == (6, 1)
    assert problem.message == f"effective window of 'test' version 2 overlaps version 1 ({first})"


def test_a_version_beyond_32_bits_is_located(write_program):
    # a run keys results by version in 64-bit columns and the ledger keeps it in an INTEGER column
    path = write_program(program_text(TIERS, version=2**31))
    with pytest.raises(incentives.ProgramError) as caught:
        incentives.load_programs([path])
    [problem] = caught.value.problems
    assert (problem.line, "2147483647" in problem.message) == (4, True), problem


def test_uses_unknown_program_and_cycles(write_program):
    a = write_program(program_text(TIERS, "uses: [b]", id="a"), "a.yaml")
    b = write_program(program_text(TIERS, "uses: [a, ghost]", id="b"), "b.yaml")
    with pytest.raises(incentives.ProgramError) as caught:
        incentives.load_programs([a, b])
    messages = [problem.message for problem in caught.value.problems]
    assert "uses 'ghost', which is not loaded" in messages
    assert any(message.startswith("'uses' forms a cycle: ") for message in messages)


def test_reading_a_program_not_in_uses_is_an_error(write_program):
    tier = write_program(program_text(TIERS, id="partner_tier"), "tier.yaml")
    reader = write_program(program_text("""
        tiers:
          qualify_on: partner_tier.total
          levels:
            - {name: Only, from: 0, rate: 1%}
        """, id="reader"), "reader.yaml")
    with pytest.raises(incentives.ProgramError) as caught:
        incentives.load_programs([tier, reader])
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == (str(reader), 9)
    assert problem.message == "'partner_tier.total' reads program 'partner_tier', which is not listed in 'uses'"


def test_folder_loading_orders_by_uses(write_program, tmp_path):
    write_program(program_text(TIERS, "uses: [z_tier]", id="a_reader"), "a.yaml")
    write_program(program_text(TIERS, id="z_tier"), "z.yaml")
    programs = incentives.load_programs(tmp_path / "programs")
    assert programs.ids == ["z_tier", "a_reader"]


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(incentives.ProgramError, match="no program files"):
        incentives.load_programs(tmp_path)
    with pytest.raises(incentives.ProgramError, match="no such file or folder"):
        incentives.load_programs(tmp_path / "nope.yaml")


def test_goal_weights_that_sum_to_exactly_100_percent_are_accepted_whatever_their_digits(write_program):
    # Each weight has 29 significant digits; in Python's default context (28) each would be rounded
    # when read and their sum refused as 99.99999999999999999999999999%.
    path = write_program(program_text("""
        goals:
          targets:
            - {id: a, metric: a, target: 1, weight: 33.333333333333333333333333333%}
            - {id: b, metric: b, target: 1, weight: 33.333333333333333333333333333%}
            - {id: c, metric: c, target: 1, weight: 33.333333333333333333333333334%}
          payout:
            on: 100
            curve:
              - {attainment: 100%, factor: 100%}
        """, kind="goal"))
    [loaded] = incentives.load_programs(path)
    weights = [target.weight for target in loaded.program.goals.targets]
    assert weights == [D("0.33333333333333333333333333333"), D("0.33333333333333333333333333333"),
                       D("0.33333333333333333333333333334")]


def test_the_text_of_a_file_is_counted_with_aliases_expanded():
    from incentives.yamlsource import MAX_CHARACTERS, YamlSourceError, load_yaml

    _, source = load_yaml("a: &x bcd\nb: [*x, *x]\n", "p.yaml")
    assert source.characters == 2 + 3 * 3  # the keys a and b, then bcd three times
    # 2 + 199,999 × 5 = 999,997 characters load; 2 + 200,000 × 5 = 1,000,002 are refused, located at the
    # anchored node whose copy crossed the count
    value, _ = load_yaml("a: &x " + "y" * 199_999 + "\nb: [*x, *x, *x, *x]\n", "p.yaml")
    assert len(value["b"]) == 4 and MAX_CHARACTERS == 1_000_000
    with pytest.raises(YamlSourceError) as caught:
        load_yaml("a: &x " + "y" * 200_000 + "\nb: [*x, *x, *x, *x]\n", "p.yaml")
    assert [str(problem) for problem in caught.value.problems] == [
        "p.yaml:1:4: the file holds more than 1,000,000 characters of text once aliases (*name) are expanded"]


def test_an_offset_in_a_text_over_several_lines_is_found_by_its_characters():
    text = "when: >\n  a >\n    b\n"
    span = TextSpan(text.index("a"), len(text), "a >\n  b\n")  # the value as YAML gives it
    assert span.index_of(text, 2) == text.index(">", text.index("a"))
    assert span.index_of(text, 6) == text.index("b")
    assert span.index_of(text, 7) == text.index("b") + 1  # just after the end: a syntax error's offset
    # characters that do not line up (an escape): no index, and the problem falls back to the value's position
    assert TextSpan(text.index("a"), len(text), "a > c").index_of(text, 4) is None
