"""The bad-input catalogue: every bad program, facts file, claims file or record is reported exactly.

Each case asserts the exact message and where it is:

* program files: every problem as ``line:col: message`` (the file name is checked
  and stripped), via :class:`incentives.ProgramError`;
* facts and claims files that cannot be read: ``InputError`` with file and line;
* bad records: the exact ``errors`` of their ``error`` result rows, and that every
  input record still yields its rows (nothing is dropped, nothing crashes).

Inputs built to exhaust the machine (alias bombs, deep nesting, huge numbers)
must fail fast with a located problem: their time (and, where it could blow up,
memory) is bounded here.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import pytest

import incentives
from conftest import program_text
from incentives.errors import InputError
from incentives.inputs import read_claims, read_facts

# --- programs ---------------------------------------------------------------------------
# program_text() puts the 7-line header (id, name, kind, version, currency, effective,
# period) first, so a program's own section starts on line 8.

TIERS = """
tiers:
  qualify_on: revenue
  levels:
    - {name: Silver, from: 100000, rate: 2%}
    - {name: Gold,   from: 500000, rate: 3.5%}
"""

GOALS = """
goals:
  targets:
    - {{id: revenue, metric: revenue,   target: quota, weight: {w1}}}
    - {{id: logos,   metric: new_logos, target: 4,     weight: {w2}}}
  payout:
    on: target_incentive
    curve:
      - {{attainment: {a1}, factor: 50%}}
      - {{attainment: {a2}, factor: 100%}}
"""

MDF = """
mdf:
  accrual: {{on: revenue, rate: 2%}}
  claims: {{reimbursement: {reimbursement}, activities: [event]}}
"""

LIMITED_MDF = """
mdf:
  accrual: {{on: revenue, rate: 2%}}
  claims:
    reimbursement: 50%
    activities: [event, digital]
    {limit}
"""


def claim_limit(limit: str) -> str:
    return program_text(LIMITED_MDF.format(limit=limit), kind="mdf")


def tier(qualify_on: str = "revenue", *extra: str, level: str = "{name: Silver, from: 0, rate: 2%}") -> str:
    """A tier program with one level; the expression ``qualify_on`` starts at line 9, column 15."""
    return program_text(f"tiers:\n  qualify_on: {qualify_on}\n  levels:\n    - {level}\n", *extra)


def expression(text: str) -> str:
    """A tier program whose ``qualify_on`` is ``text`` in double quotes: its first character is 9:16."""
    return tier(f'"{text}"')


def goal(w1: str = "70%", w2: str = "30%", a1: str = "80%", a2: str = "100%") -> str:
    return program_text(GOALS.format(w1=w1, w2=w2, a1=a1, a2=a2), kind="goal")


def per_goal(extra: str, per_goal_key: str = "per_goal: true", cap: str = "") -> str:
    """A goal program whose first target (line 10, its ``extra`` keys from column 67) takes ``extra``."""
    return program_text(f"""
        goals:
          targets:
            - {{id: revenue, metric: revenue, target: quota, weight: 100%, {extra}}}
          {cap or "attainment_cap: 150%"}
          payout:
            on: target_incentive
            {per_goal_key}
            curve:
              - {{attainment: 80%, factor: 50%}}
              - {{attainment: 100%, factor: 100%}}
        """, kind="goal")


ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([previous] * 10)}]\n"
    for name, previous in zip("abcdefg", ["x", "*a", "*b", "*c", "*d", "*e", "*f"])
)  # 10**7 values once expanded


@dataclass(frozen=True)
class Bad:
    id: str
    text: str | bytes
    problems: list[str]
    seconds: float | None = None  # a bound on the load time: inputs built to exhaust the machine
    megabytes: int | None = None  # a bound on the memory allocated while loading


PROGRAM_CASES = [
    # malformed YAML
    Bad("tab_indentation", program_text("tiers:\n\tqualify_on: revenue\n"),
        ["9:1: while scanning for the next token found character '\\t' that cannot start any token "
         "(YAML indentation must use spaces, not tabs)"]),
    Bad("tab_before_list_item", program_text("tiers:\n  qualify_on: revenue\n  levels:\n  \t- {name: S, from: 0, rate: 1%}\n"),
        ["11:3: while scanning for the next token found character '\\t' that cannot start any token "
         "(YAML indentation must use spaces, not tabs)"]),
    Bad("indented_too_far", program_text("tiers:\n  qualify_on: revenue\n   levels: []\n"),
        ["10:10: mapping values are not allowed here"]),
    Bad("dedented_inside_a_list_item", program_text("tiers:\n  qualify_on: revenue\n  levels:\n    - name: S\n   from: 0\n"),
        ["12:4: while parsing a block mapping expected <block end>, but found '<block mapping start>'"]),
    Bad("duplicate_top_level_key", program_text(TIERS, "version: 2"),
        ["13:1: duplicate key 'version' (first defined at line 4)"]),
    Bad("duplicate_key_in_flow_mapping", tier(level="{name: S, from: 0, rate: 1%, rate: 2%}"),
        ["11:36: duplicate key 'rate' (first defined at line 11)"]),
    Bad("merge_key", program_text(TIERS, "defaults:\n  <<: {x: 1}\n"),
        ["14:3: only plain keys are allowed here (no merge keys or complex keys)"]),
    Bad("python_tag_on_a_sequence", program_text(TIERS).replace("name: Test test", "name: !!python/object/apply:os.system ['true']"),
        ["2:7: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not supported"]),
    Bad("python_tag_on_a_scalar", program_text(TIERS).replace("name: Test test", "name: !!python/name:os.system x"),
        ["2:7: YAML tag 'tag:yaml.org,2002:python/name:os.system' is not supported"]),
    Bad("omap_tag", program_text(TIERS).replace("  levels:\n", "  levels: !!omap\n"),
        ["10:11: YAML tag 'tag:yaml.org,2002:omap' is not supported"]),
    Bad("nul_character", program_text(TIERS).replace("name: Test test", "name: Test\x00test"),
        ["2:11: unacceptable character #x0000: special characters are not allowed"]),
    Bad("not_utf8", program_text(TIERS).replace("Test test", "Caf\xe9").encode("latin-1"),
        ["2: the file is not UTF-8 text"]),
    Bad("empty_file", "", ["1:1: the file is empty; expected a program mapping"]),
    Bad("comments_only", "# nothing here\n", ["1:1: the file is empty; expected a program mapping"]),
    Bad("top_level_list", "- id: test\n- kind: tier\n", ["1:1: expected a mapping of program keys at the top of the file"]),
    Bad("invalid_date", program_text(TIERS).replace("2027-01-01", "2027-02-30"),
        ["6:19: '2027-02-30' is not a valid date (day is out of range for month)"]),
    Bad("date_time_instead_of_date", program_text(TIERS).replace("2027-01-01", "2027-01-01 10:00:00"),
        ["6:19: expected a date (YYYY-MM-DD), found a date-time '2027-01-01 10:00:00'"]),
    # unknown and misspelled keys
    Bad("misspelled_top_level_key", program_text(TIERS, "bonsues: []"),
        ["13:1: unknown key 'bonsues'; did you mean 'bonuses'?"]),
    Bad("misspelled_section_key", program_text("tiers:\n  qualify_on: revenue\n  mdoe: incremental\n  levels:\n    - {name: S, from: 0, rate: 1%}\n"),
        ["10:3: unknown key 'mdoe'; did you mean 'mode'?"]),
    Bad("misspelled_level_key", tier(level="{name: S, from: 0, rate: 1%, requirs: 'x >= 1'}"),
        ["11:36: unknown key 'requirs'; did you mean 'requires'?"]),
    Bad("unknown_key_without_a_near_one", program_text(TIERS, "zzz: 1"),
        ["13:1: unknown key 'zzz'; expected one of: id, name, kind, version, currency, effective, period, "
         "fiscal_year_start, rounding, uses, defaults, metrics, eligibility, tiers, goals, mdf, bonuses, "
         "deductions, allow_negative, cap, min_payout, budget, prorate_by"]),
    Bad("missing_required_keys", "id: test\nname: Test\nkind: tier\ncurrency: USD\nperiod: quarter\n" + TIERS.lstrip(),
        ["1:1: missing required key 'version'", "1:1: missing required key 'effective'"]),
    # wrong types
    Bad("version_is_text", program_text(TIERS).replace("version: 1", "version: one"),
        ["4:10: version: Input should be a valid integer, found 'one'"]),
    Bad("version_is_a_boolean", program_text(TIERS).replace("version: 1", "version: true"),
        ["4:10: version: Input should be a valid integer, found True"]),
    Bad("places_is_a_boolean", program_text(TIERS, "rounding: {places: true}"),
        ["13:20: places: Input should be a valid integer, found True"]),
    Bad("levels_is_a_number", program_text("tiers:\n  qualify_on: revenue\n  levels: 5\n"),
        ["10:11: levels: Input should be a valid list, found 5"]),
    Bad("rate_is_text", tier(level="{name: S, from: 0, rate: lots}"),
        ["11:32: rate: expected a number, found 'lots'"]),
    Bad("rate_is_a_boolean", tier(level="{name: S, from: 0, rate: true}"),
        ["11:32: rate: expected a number, found a boolean"]),
    Bad("percent_without_a_number", tier(level="{name: S, from: 0, rate: '%'}"),
        ["11:32: rate: expected a percentage such as 3.5%, found '%'"]),
    Bad("quoted_threshold_in_e_notation_is_text", tier(level="{name: S, from: '1e5', rate: 1%}"),
        ["11:23: from: expected a number, found '1e5'"]),
    Bad("effective_from_is_not_a_date", program_text(TIERS).replace("{from: 2027-01-01}", "{from: soon}"),
        ["6:19: from: Input should be a valid date or datetime, input is too short, found 'soon'"]),
    Bad("unknown_mode", program_text("tiers:\n  qualify_on: revenue\n  mode: retro\n  levels:\n    - {name: S, from: 0, rate: 1%}\n"),
        ["10:9: mode: Input should be 'retroactive' or 'incremental', found 'retro'"]),
    Bad("fiscal_year_start_unquoted_number", program_text(TIERS, "fiscal_year_start: 701"),
        ['13:20: fiscal_year_start: expected "MM-DD" in quotes, found 701']),
    Bad("currency_lower_case", program_text(TIERS).replace("currency: USD", "currency: usd"),
        ["5:11: currency: String should match pattern '^[A-Z]{3}$', found 'usd'"]),
    Bad("defaults_list_of_mappings", program_text(TIERS, "defaults:\n  deals: [{amount: 1}]\n"),
        ["14:3: defaults: deals: a list of mappings cannot be flattened to named facts"]),
    # rates, amounts and bounds that make no sense
    Bad("negative_rate", tier(level="{name: S, from: 0, rate: -2%}"),
        ["11:32: rate: must be at least 0%, found '-2%'"]),
    Bad("rate_over_100_percent", tier(level="{name: S, from: 0, rate: 150%}"),
        ["11:32: rate: must be at most 100%, found '150%'"]),
    Bad("rate_over_1_as_a_decimal", tier(level="{name: S, from: 0, rate: 1.5}"),
        ["11:32: rate: must be at most 1, found 1.5"]),
    Bad("negative_threshold", tier(level="{name: S, from: -1, rate: 1%}"),
        ["11:23: from: must be at least 0, found -1"]),
    Bad("negative_cap", program_text(TIERS, "cap: -5"), ["13:6: cap: must be at least 0, found -5"]),
    Bad("cap_finer_than_a_cent", program_text(TIERS, "cap: 1000.005"),
        ["13:6: cap: 1000.005 has more decimals than rounding.places (2)"]),
    Bad("budget_finer_than_the_rounding", program_text(TIERS, "budget: 100.5", "rounding: {places: 0}"),
        ["13:9: budget: 100.5 has more decimals than rounding.places (0)"]),
    Bad("reimbursement_over_100_percent", program_text(MDF.format(reimbursement="120%"), kind="mdf"),
        ["10:27: reimbursement: must be at most 100%, found '120%'"]),
    Bad("reimbursement_zero", program_text(MDF.format(reimbursement="0%"), kind="mdf"),
        ["10:27: reimbursement: must be above 0%, found '0%'"]),
    Bad("negative_max_per_claim", claim_limit("max_per_claim: -5"),
        ["13:20: max_per_claim: must be above 0, found -5"]),
    Bad("zero_max_per_claim", claim_limit("max_per_claim: 0"), ["13:20: max_per_claim: must be above 0, found 0"]),
    Bad("max_per_claim_finer_than_a_cent", claim_limit("max_per_claim: 100.005"),
        ["13:20: max_per_claim: 100.005 has more decimals than rounding.places (2)"]),
    Bad("max_per_claim_typo", claim_limit("max_per_clam: 100"),
        ["13:5: unknown key 'max_per_clam'; did you mean 'max_per_claim'?"]),
    Bad("negative_activity_limit", claim_limit("max_by_activity: {event: -1}"),
        ["13:30: event: must be above 0, found -1"]),
    Bad("activity_limit_for_an_activity_not_claimable", claim_limit("max_by_activity: {evnt: 100}"),
        ["13:29: max_by_activity: 'evnt' is not an eligible activity (claims.activities: event, digital); "
         "did you mean 'event'?"]),
    Bad("multiplier_zero", program_text(TIERS, "bonuses:\n  - {id: b, when: 'nps >= 50', multiplier: 0%}\n"),
        ["14:44: multiplier: must be above 0%, found '0%'"]),
    Bad("bonus_with_multiplier_and_amount", program_text(TIERS, "bonuses:\n  - {id: b, when: 'nps >= 50', multiplier: 110%, amount: 5}\n"),
        ["14:5: bonus 'b' needs exactly one of 'multiplier' or 'amount'"]),
    # empty, out of order, not summing
    Bad("empty_levels", program_text("tiers:\n  qualify_on: revenue\n  levels: []\n"),
        ["10:3: levels: List should have at least 1 item after validation, not 0"]),
    Bad("empty_curve", program_text("goals:\n  targets:\n    - {id: r, metric: revenue, target: quota, weight: 100%}\n"
                                    "  payout:\n    on: target_incentive\n    curve: []\n", kind="goal"),
        ["13:5: curve: List should have at least 1 item after validation, not 0"]),
    Bad("tiers_out_of_order", program_text("tiers:\n  qualify_on: revenue\n  levels:\n"
                                           "    - {name: Gold, from: 500000, rate: 3%}\n"
                                           "    - {name: Silver, from: 100000, rate: 2%}\n"),
        ["12:28: tier levels must have strictly ascending 'from': Silver (100000) is not above Gold (500000)"]),
    Bad("duplicate_tier_name", program_text("tiers:\n  qualify_on: revenue\n  levels:\n"
                                            "    - {name: S, from: 0, rate: 1%}\n    - {name: S, from: 1, rate: 2%}\n"),
        ["12:14: duplicate tier name 'S'"]),
    Bad("weights_below_100_percent", goal(w2="20%"), ["9:3: goal weights must sum to 100%, they sum to 90%"]),
    Bad("weights_above_100_percent", goal(w2="40%"), ["9:3: goal weights must sum to 100%, they sum to 110%"]),
    # summed with every digit: 28 significant digits would round this sum to exactly 100%
    Bad("weights_above_100_percent_by_a_sliver", goal(w1="70%", w2="30.0000000000000000000000000001%"),
        ["9:3: goal weights must sum to 100%, they sum to 100.0000000000000000000000000001%"]),
    Bad("curve_points_out_of_order", goal(a1="100%", a2="80%"),
        ["16:22: curve points must have strictly ascending 'attainment'"]),
    Bad("curve_points_equal", goal(a1="100%", a2="100%"),
        ["16:22: curve points must have strictly ascending 'attainment'"]),
    # per-goal payouts
    Bad("per_goal_curve_out_of_order",
        per_goal("curve: [{attainment: 100%, factor: 100%}, {attainment: 90%, factor: 150%}]"),
        ["10:122: curve points must have strictly ascending 'attainment'"]),
    Bad("per_goal_threshold_above_the_goal_cap", per_goal("threshold: 90%, cap: 85%"),
        ["10:78: goal 'revenue': threshold 90% is above its cap 85%, so the goal could never pay"]),
    Bad("per_goal_threshold_above_the_attainment_cap", per_goal("threshold: 160%"),
        ["10:78: goal 'revenue': threshold 160% is above the program's attainment_cap 150%, "
         "so the goal could never pay"]),
    Bad("per_goal_keys_without_per_goal", per_goal("threshold: 80%, cap: 120%", per_goal_key=""),
        ["10:78: goal 'revenue': 'threshold' applies to per-goal payouts only; set 'per_goal: true' under "
         "'goals.payout' to pay each goal on its own curve",
         "10:88: goal 'revenue': 'cap' applies to per-goal payouts only; set 'per_goal: true' under "
         "'goals.payout' to pay each goal on its own curve"]),
    Bad("per_goal_false_with_a_goal_curve", per_goal("curve: [{attainment: 0%, factor: 0%}]",
                                                     per_goal_key="per_goal: false"),
        ["10:67: goal 'revenue': 'curve' applies to per-goal payouts only; set 'per_goal: true' under "
         "'goals.payout' to pay each goal on its own curve"]),
    Bad("per_goal_not_a_boolean", per_goal("threshold: 80%", per_goal_key="per_goal: yes please"),
        ["14:15: per_goal: Input should be a valid boolean, found 'yes please'"]),
    Bad("misspelled_per_goal_key", per_goal("threshhold: 80%"),
        ["10:67: unknown key 'threshhold'; did you mean 'threshold'?"]),
    Bad("negative_per_goal_threshold", per_goal("threshold: -10%"),
        ["10:78: threshold: must be at least 0%, found '-10%'"]),
    Bad("ratio_places_out_of_range", program_text(TIERS, "rounding: {ratio_places: 40}"),
        ["13:26: ratio_places: must be at most 28, found 40"]),
    Bad("uses_a_program_not_loaded", program_text(TIERS, "uses: [partner_tier]"),
        ["13:8: uses 'partner_tier', which is not loaded"]),
    # expressions
    Bad("expression_syntax_error", program_text(TIERS, "bonuses:\n  - {id: b, when: 'nps >', amount: 5}\n"),
        ["14:25: invalid expression: syntax error: invalid syntax"]),
    Bad("expression_assignment_instead_of_comparison", program_text(TIERS, "eligibility:\n  - {id: e, when: 'status = 1'}\n"),
        ["14:27: invalid expression: '=' is not a comparison; use =="]),
    Bad("unknown_function", expression("sum(revenue)"),
        ["9:16: invalid expression: unknown function 'sum'; allowed: abs, if, max, min"]),
    Bad("attribute_of_a_text", expression("'abc'.upper"),
        ["9:16: invalid expression: only a name can have a dotted part, as in certifications.sales"]),
    Bad("attribute_of_a_call_result", expression("min(a, b).real"),
        ["9:16: invalid expression: only a name can have a dotted part, as in certifications.sales"]),
    Bad("dunder_attribute", tier("revenue.__class__"),
        ["9:23: invalid expression: names starting with '_' are not allowed"]),
    Bad("dunder_import", expression("__import__('os')"),
        ["9:16: invalid expression: unknown function '__import__'; allowed: abs, if, max, min"]),
    Bad("lambda", expression("lambda: 1"), ["9:16: invalid expression: lambda is not supported"]),
    Bad("lambda_called", expression("(lambda: 1)()"), ["9:17: invalid expression: only abs, if, max, min can be called"]),
    Bad("comprehension", expression("max([x for x in deals])"),
        ["9:20: invalid expression: comprehensions are not supported"]),
    Bad("subscript", expression("deals[0]"), ["9:16: invalid expression: subscripts are not supported"]),
    Bad("call_of_a_builtin", expression("open('/etc/passwd')"),
        ["9:16: invalid expression: unknown function 'open'; allowed: abs, if, max, min"]),
    Bad("call_of_a_method", expression("revenue.bit_length()"),
        ["9:16: invalid expression: unknown function 'revenue.bit_length'; allowed: abs, if, max, min"]),
    Bad("keyword_argument", expression("max(revenue, default=0)"),
        ["9:29: invalid expression: keyword arguments are not supported"]),
    Bad("f_string", expression("f'{revenue}'"), ["9:16: invalid expression: f-strings are not supported"]),
    Bad("conditional_expression", expression("revenue if active else 0"),
        ["9:16: invalid expression: conditional expressions (a if b else c) are not supported"]),
    Bad("if_with_two_arguments", expression("1% * if(active, revenue)"),
        ["9:21: invalid expression: if() takes exactly three arguments, if(condition, then, else) (2 given)"]),
    Bad("if_with_four_arguments", expression("if(active, revenue, 0, 1)"),
        ["9:16: invalid expression: if() takes exactly three arguments, if(condition, then, else) (4 given)"]),
    # expressions certain to fail for every partner (checked at load, not at run time)
    Bad("arithmetic_on_a_comparison", program_text(TIERS, 'metrics:\n  gate: "(rev_att >= 80%) * rev_att"\n'),
        ["14:11: certain to fail: cannot multiply a comparison's result (true or false): '*' needs two numbers"]),
    Bad("arithmetic_on_a_boolean_metric",
        program_text(TIERS, "metrics:\n  big: revenue > 100000\n  doubled: big * 2\n"),
        ["15:12: certain to fail: cannot multiply metric 'big' (true or false): '*' needs two numbers"]),
    Bad("arithmetic_on_a_text", expression("revenue + 'k'"),
        ["9:26: certain to fail: cannot add the text 'k': '+' needs two numbers"]),
    Bad("division_by_a_constant_zero", expression("revenue / (1 - 1)"),
        ["9:27: certain to fail: division by zero: the divisor is always 0"]),
    Bad("number_compared_with_a_text", program_text(TIERS, "eligibility:\n  - {id: e, when: \"100 < 'high'\"}\n"),
        ["14:20: certain to fail: cannot compare the number 100 < the text 'high': only two numbers, two texts "
         "or two dates can be ordered"]),
    Bad("number_equal_to_a_text", program_text(TIERS, "eligibility:\n  - {id: e, when: \"1 == '1'\"}\n"),
        ["14:20: always false: the number 1 == the text '1' compares values of different types, which are never "
         "equal"]),
    Bad("not_of_a_number", program_text(TIERS, "eligibility:\n  - {id: e, when: 'active and not 1'}\n"),
        ["14:35: certain to fail: 'not' needs true or false, not the number 1"]),
    Bad("if_condition_is_a_number", expression("if(1, revenue, 0)"),
        ["9:19: certain to fail: if() needs a true or false condition, not the number 1"]),
    Bad("condition_that_is_a_number", program_text(TIERS, "bonuses:\n  - {id: b, when: revenue + 1, amount: 5}\n"),
        ["14:19: certain to fail: a condition must be true or false, not the result of '+' (a number)"]),
    Bad("tier_requires_that_is_a_text",
        tier(level="{name: Silver, from: 0, rate: 2%, requires: \"'gold'\"}"),
        ["11:52: certain to fail: a condition must be true or false, not the text 'gold'"]),
    Bad("amount_that_is_a_boolean", program_text(TIERS, "bonuses:\n  - {id: b, when: nps > 5, amount: nps > 50}\n"),
        ["14:36: certain to fail: 'amount' must be a number, not a comparison's result (true or false)"]),
    Bad("qualify_on_that_is_a_text", expression("'revenue'"),
        ["9:16: certain to fail: 'qualify_on' must be a number, not the text 'revenue'"]),
    # an expression written over several lines is located at its line and column in the file
    Bad("expression_error_in_a_folded_block",
        program_text(TIERS, "bonuses:\n  - id: b\n    when: >\n      nps > 1\n      and revenue >> 1\n    amount: 5\n"),
        ["17:19: invalid expression: the >> operator is not supported"]),
    Bad("certain_failure_in_a_literal_block",
        program_text(TIERS, "bonuses:\n  - id: b\n    when: |\n      nps > 1\n        and 'a' + 1 > 2\n    amount: 5\n"),
        ["17:13: certain to fail: cannot add the text 'a': '+' needs two numbers"]),
    Bad("certain_failure_in_a_plain_scalar_over_two_lines",
        program_text(TIERS, "bonuses:\n  - id: b\n    when: nps > 1 and\n      1 > 'x'\n    amount: 5\n"),
        ["16:7: certain to fail: cannot compare the number 1 > the text 'x': only two numbers, two texts or two "
         "dates can be ordered"]),
    Bad("power_tower", expression("9 ** 9 ** 9"), ["9:18: invalid expression: the ** operator is not supported"],
        seconds=1),
    Bad("deeply_nested_unary", expression("-" * 150 + "1"),
        ["9:116: invalid expression: expression is nested too deeply (more than 100 levels)"], seconds=1),
    Bad("deeply_nested_calls", expression("abs(" * 120 + "1" + ")" * 120),
        ["9:416: invalid expression: expression is nested too deeply (more than 100 levels)"], seconds=1,
        megabytes=50),
    Bad("deeply_nested_parentheses", expression("(" * 300 + "1" + ")" * 300),
        ["9:216: invalid expression: syntax error: too many nested parentheses"], seconds=1),
    Bad("expression_too_long", expression(" + ".join(["revenue"] * 300)),
        ["9:2016: invalid expression: expression is too long (2,997 characters; at most 2,000)"], seconds=1),
    Bad("huge_exponent_in_an_expression", expression("revenue * 1e999999999"),
        ["9:26: invalid expression: number is out of range (exponent beyond ±100)"], seconds=1, megabytes=10),
    Bad("too_many_digits_in_an_expression", expression("revenue + " + "9" * 60),
        ["9:26: invalid expression: number has more than 50 digits"], seconds=1, megabytes=10),
    # deductions, and the program's own outcome (this.*)
    Bad("deduction_without_description", program_text(TIERS, "deductions:\n  - {id: d, amount: 5}\n"),
        ["14:5: missing required key 'description'"]),
    Bad("deduction_key_misspelled", program_text(TIERS, "deductions:\n  - {id: d, amount: 5, description: x, wen: 'a > 1'}\n"),
        ["14:40: unknown key 'wen'; did you mean 'when'?"]),
    Bad("deduction_id_of_a_bonus", program_text(TIERS, "bonuses:\n  - {id: d, when: 'a > 1', amount: 5}\n"
                                                "deductions:\n  - {id: d, amount: 5, description: x}\n"),
        ["16:10: duplicate rule id 'd'"]),
    Bad("this_attainment_in_a_tier_program", program_text(TIERS, "bonuses:\n  - {id: b, when: 'this.attainment >= 1', amount: 5}\n"),
        ["14:20: 'this.attainment' exists only in goal programs (this one is kind: tier)"]),
    Bad("this_tier_in_an_mdf_program", program_text(MDF.format(reimbursement="50%"), "cap: this.tier", kind="mdf"),
        ["11:6: 'this.tier' exists only in tier programs (this one is kind: mdf)"]),
    Bad("this_name_misspelled", program_text(TIERS, "min_payout: this.subtotl"),
        ["13:13: unknown name 'this.subtotl'; did you mean 'this.subtotal'?"]),
    Bad("this_in_eligibility", program_text(TIERS, "eligibility:\n  - {id: e, when: 'this.base > 0'}\n"),
        ["14:20: 'this.base' is the program's own outcome, known only in bonuses, deductions, cap and "
         "min_payout; 'eligibility' is computed before it"]),
    Bad("this_in_a_metric", program_text(TIERS, "metrics:\n  double: this.base * 2\n"),
        ["14:11: 'this.base' is the program's own outcome, known only in bonuses, deductions, cap and "
         "min_payout; 'metrics' is computed before it"]),
    Bad("this_in_tier_requires", tier(level="{name: S, from: 0, rate: 1%, requires: 'this.tier == 1'}"),
        ["11:47: 'this.tier' is the program's own outcome, known only in bonuses, deductions, cap and "
         "min_payout; 'tiers' is computed before it"]),
    Bad("metric_named_this", program_text(TIERS, "metrics:\n  this.base: 2\n"),
        ["14:14: metrics: 'this.base' cannot be defined: names beginning 'this.' are the program's own outcome"]),
    Bad("cap_expression_invalid", program_text(TIERS, "cap: 'this.base *'"),
        ["13:18: invalid expression: syntax error: invalid syntax"]),
    # numbers and files built to exhaust the machine
    Bad("huge_exponent_in_yaml", program_text(TIERS, "cap: 1.0e+999999999"),
        ["13:6: cap: number 1.0E+999999999 is out of range (at most 50 digits, exponent within ±100)"],
        seconds=1, megabytes=10),
    Bad("huge_integer_in_yaml", program_text(TIERS, "cap: " + "9" * 5000),
        ["13:6: '99999999999999999999...' is not a usable number (5,000 characters)"], seconds=1, megabytes=10),
    Bad("nan_in_yaml", program_text(TIERS, "cap: .nan"), ["13:6: expected a finite number, found '.nan'"]),
    Bad("infinity_in_yaml", program_text(TIERS, "budget: .inf"), ["13:9: expected a finite number, found '.inf'"]),
    Bad("yaml_nested_past_the_limit", program_text(TIERS, "defaults: {x: " + "[" * 150 + "]" * 150 + "}"),
        ["13:114: the file is nested too deeply (more than 100 levels)"], seconds=2),
    Bad("yaml_nested_past_the_recursion_limit", program_text(TIERS, "defaults: {x: " + "[" * 1000 + "]" * 1000 + "}"),
        ["13:114: the file is nested too deeply (more than 100 levels)"], seconds=10),
    Bad("yaml_alias_bomb", ALIAS_BOMB,
        ["1:32: the file holds more than 20,000 values (are aliases (*name) repeating a large anchor?)"],
        seconds=10, megabytes=100),
    Bad("yaml_alias_string_bomb", program_text(TIERS, "defaults:\n  note: &s " + "a" * 100_000 + "\n"
                                               "  notes: [" + ", ".join(["*s"] * 500) + "]\n"),
        ["14:9: the file holds more than 1,000,000 characters of text once aliases (*name) are expanded"],
        seconds=2, megabytes=50),
    Bad("yaml_text_past_the_size_limit_without_aliases", program_text(TIERS, "note: " + "x" * 1_000_000),
        ["13:7: the file holds more than 1,000,000 characters of text once aliases (*name) are expanded"],
        seconds=5),
    # numbers in defaults are facts: the facts' range
    Bad("tiny_exponent_in_defaults", program_text(TIERS, "defaults: {x: 1e-999999999}"),
        ["13:15: defaults: x: 1E-999999999 is outside the supported range (at most 40 significant digits, "
         "exponent within ±100)"], seconds=1, megabytes=10),
    Bad("too_many_digits_in_defaults", program_text(TIERS, "defaults: {x: " + "9" * 41 + "}"),
        ["13:15: defaults: x: 99999999999999999999… (41 characters) is outside the supported range (at most 40 "
         "significant digits, exponent within ±100)"]),
    Bad("huge_exponent_in_a_defaults_list", program_text(TIERS, "defaults: {x: [1, 1e200]}"),
        ["13:12: defaults: x: 1E+200 is outside the supported range (at most 40 significant digits, "
         "exponent within ±100)"]),
    # lone surrogates: YAML escapes them in double quotes; no UTF-8 file can hold them
    # earlier periods read facts, not what a period's computation gives
    Bad("year_ago_of_a_metric", tier("net", 'metrics:\n  net: revenue - returns\n',
                                     'bonuses:\n  - {id: up, when: "net > year_ago.net", amount: 100}\n'),
        ["15:27: 'year_ago.net': year_ago. reads facts of an earlier period's record, not metrics or results; "
         "'net' is a metric of this program (read the facts it is computed from, e.g. year_ago.revenue)"]),
    Bad("prior_chained", expression("prior.prior.revenue"),
        ["9:16: 'prior.prior.revenue': prior. reads facts of an earlier period's record, not metrics or results; "
         "'prior.' and 'year_ago.' reach one earlier period and do not chain (read the facts it is computed "
         "from, e.g. prior.revenue)"]),
    Bad("lone_surrogate_in_a_value", program_text(TIERS, 'defaults: {region: "EM\\ud800EA"}'),
        ["13:20: the text holds \\ud800, a lone surrogate, which is not valid Unicode text"]),
    Bad("lone_surrogate_in_a_key", program_text(TIERS, 'defaults: {"x\\uDC00": 1}'),
        ["13:12: the text holds \\udc00, a lone surrogate, which is not valid Unicode text"]),
    Bad("escaped_surrogate_pair_in_yaml", program_text(TIERS, 'defaults: {note: "\\ud83d\\ude00"}'),
        ["13:18: the text holds \\ud83d, a lone surrogate, which is not valid Unicode text "
         "(YAML does not join an escaped surrogate pair: write \\U0001F600)"]),
]


def _load_problems(path: Path) -> list[str]:
    with pytest.raises(incentives.ProgramError) as caught:
        incentives.load_programs(path)
    located = []
    for problem in caught.value.problems:
        assert problem.file == str(path)
        located.append(str(problem).removeprefix(f"{path}:"))
    return located


@pytest.mark.parametrize("case", PROGRAM_CASES, ids=[case.id for case in PROGRAM_CASES])
def test_bad_program_is_reported_at_its_place(case: Bad, tmp_path: Path) -> None:
    path = tmp_path / "program.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    if case.megabytes is not None:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        problems = _load_problems(path)
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if case.megabytes is not None else 0
        tracemalloc.stop()
    assert problems == case.problems
    if case.seconds is not None:
        assert elapsed < case.seconds, f"took {elapsed:.2f}s"
    if case.megabytes is not None:
        assert peak < case.megabytes * 2**20, f"allocated {peak / 2**20:.1f} MB"


def test_every_problem_of_a_bad_file_is_listed_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "program.yaml"
    path.write_text(program_text("""
        tiers:
          qualify_on: "sum(revenue)"
          levels:
            - {name: Gold,   from: 500000, rate: 150%}
            - {name: Silver, from: 100000, rate: lots}
        bonsues: []
        """), encoding="utf-8")
    assert _load_problems(path) == [
        "9:16: invalid expression: unknown function 'sum'; allowed: abs, if, max, min",
        "11:42: rate: must be at most 100%, found '150%'",
        "12:42: rate: expected a number, found 'lots'",
        "13:1: unknown key 'bonsues'; did you mean 'bonuses'?",
    ]


# --- facts and claims files -------------------------------------------------------------

FACTS_HEADER = "partner_id,period,revenue\n"
CLAIMS_HEADER = "claim_id,partner_id,period,activity,amount,activity_end,submitted_on,preapproved\n"


@dataclass(frozen=True)
class BadFile:
    id: str
    name: str
    content: str | bytes
    line: int
    message: str


FILE_CASES = [
    BadFile("semicolon_delimiter", "facts.csv", "partner_id;period;revenue\nP1;2027-Q1;5\n", 1,
            "expected comma-separated values; the header looks semicolon-separated"),
    BadFile("tab_delimiter", "facts.csv", "partner_id\tperiod\trevenue\nP1\t2027-Q1\t5\n", 1,
            "expected comma-separated values; the header looks tab-separated"),
    BadFile("short_row", "facts.csv", FACTS_HEADER + "P1,2027-Q1,5\nP2,2027-Q1\n", 3,
            "this row has 2 cells but the header has 3 columns"),
    BadFile("long_row", "facts.csv", FACTS_HEADER + "P1,2027-Q1,5,7\n", 2,
            "this row has 4 cells but the header has 3 columns"),
    BadFile("latin1_bytes", "facts.csv", (FACTS_HEADER + "P1,2027-Q1,5\nCaf\xe9,2027-Q1,5\n").encode("latin-1"), 3,
            "the file is not UTF-8 text (save it as UTF-8)"),
    BadFile("latin1_far_into_the_file", "facts.csv",
            (FACTS_HEADER + "P1,2027-Q1,5\n" * 5000 + "Caf\xe9,2027-Q1,5\n").encode("latin-1"), 5002,
            "the file is not UTF-8 text (save it as UTF-8)"),
    BadFile("unclosed_quote", "facts.csv", FACTS_HEADER + 'P1,"2027-Q1,5\n', 2, "malformed CSV: unexpected end of data"),
    BadFile("text_after_a_closing_quote", "facts.csv", FACTS_HEADER + 'P1,2027-Q1,"5"x\n', 2,
            "malformed CSV: ',' expected after '\"'"),
    BadFile("cell_larger_than_the_csv_limit", "facts.csv", FACTS_HEADER + 'P1,2027-Q1,"' + "9" * 200_000 + '"\n', 2,
            "malformed CSV: field larger than field limit (131072)"),
    BadFile("no_period_column", "facts.csv", "partner_id,revenue\nP1,5\n", 1,
            "missing required column(s) period; the header has: partner_id, revenue"),
    BadFile("duplicate_column", "facts.csv", "partner_id,period,revenue,revenue\nP1,2027-Q1,5,6\n", 1,
            "duplicate column name(s) in the header: revenue"),
    BadFile("empty_facts_file", "facts.csv", "", 1, "the file is empty: expected a header row"),
    BadFile("jsonl_truncated_object", "facts.jsonl",
            '{"partner_id": "P1", "period": "2027-Q1"}\n{"partner_id": "P2", "period": "2027-Q1"\n', 2,
            "not valid JSON: Expecting ',' delimiter (column 41)"),
    BadFile("jsonl_not_an_object", "facts.jsonl", '{"partner_id": "P1", "period": "2027-Q1"}\n[1, 2]\n', 2,
            "expected a JSON object, got list"),
    BadFile("jsonl_nested_past_the_recursion_limit", "facts.jsonl",
            '{"partner_id": "P1", "period": "2027-Q1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n", 1,
            "not valid JSON: nested too deeply"),
    BadFile("jsonl_lone_surrogate_in_an_id", "facts.jsonl",
            '{"partner_id": "P1", "period": "2027-Q1"}\n{"partner_id": "\\ud800", "period": "2027-Q1"}\n', 2,
            "the line holds \\ud800 (column 17), a lone surrogate, which is not valid Unicode text"),
    BadFile("jsonl_lone_low_surrogate_in_a_nested_key", "facts.jsonl",
            '{"partner_id": "P1", "period": "2027-Q1", "a": [1, {"b\\uDC00": 2}]}\n', 1,
            "the line holds \\uDC00 (column 55), a lone surrogate, which is not valid Unicode text"),
    BadFile("jsonl_high_surrogate_without_its_low_half", "facts.jsonl",
            '{"partner_id": "P1", "period": "2027-Q1", "note": "\\ud83d\\ude00 \\ud83d\\u0041"}\n', 1,
            "the line holds \\ud83d (column 65), a lone surrogate, which is not valid Unicode text"),
    BadFile("claims_jsonl_lone_surrogate", "claims.jsonl",
            '{"claim_id": "C\\udfff", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": 5, '
            '"activity_end": "2027-01-10", "submitted_on": "2027-01-20", "preapproved": true}\n', 1,
            "the line holds \\udfff (column 16), a lone surrogate, which is not valid Unicode text"),
    BadFile("claims_without_required_columns", "claims.csv",
            "claim_id,partner_id,period,activity,amount\nC1,P1,2027-Q1,event,-5\n", 1,
            "missing required column(s) activity_end, submitted_on, preapproved; the header has: "
            "claim_id, partner_id, period, activity, amount"),
    BadFile("claims_ragged_row", "claims.csv", CLAIMS_HEADER + "C1,P1,2027-Q1,event,100,2027-01-10\n", 2,
            "this row has 6 cells but the header has 8 columns"),
]


@pytest.mark.parametrize("case", FILE_CASES, ids=[case.id for case in FILE_CASES])
def test_unreadable_input_file_is_reported_with_file_and_line(case: BadFile, tmp_path: Path) -> None:
    path = tmp_path / case.name
    path.write_bytes(case.content.encode("utf-8") if isinstance(case.content, str) else case.content)
    reader = read_claims if case.name.startswith("claims") else read_facts
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        list(reader(path))
    assert time.perf_counter() - started < 5
    assert (caught.value.file, caught.value.line, caught.value.problem.message) == (str(path), case.line, case.message)
    assert str(caught.value) == f"{path}:{case.line}: {case.message}"


# --- bad records: every record yields its result rows, each error names the problem -------

TIER_PROGRAM = program_text(TIERS, id="partner_tier")
MDF_PROGRAM = program_text("""
    mdf:
      accrual: {on: revenue, rate: 2%}
      claims: {reimbursement: 50%, activities: [event, webinar], requires_preapproval: true}
    """, id="fund", kind="mdf")
INVALID_PERIOD = ("invalid period label {!r}: expected YYYY (fiscal year), YYYY-H1..YYYY-H2 (fiscal half), "
                  "YYYY-Q1..YYYY-Q4 (fiscal quarter) or YYYY-MM (calendar month)")
RANGE = "is outside the supported range (at most 40 significant digits, exponent within ±100)"


@pytest.fixture
def engine(write_program) -> incentives.Engine:
    paths = [write_program(TIER_PROGRAM, "tier.yaml"), write_program(MDF_PROGRAM, "fund.yaml")]
    return incentives.Engine(incentives.load_programs(paths))


def run_rows(engine: incentives.Engine, tmp_path: Path, facts: str | bytes, claims: str | None = None,
             name: str = "facts.csv"):
    facts_path = tmp_path / name
    facts_path.write_bytes(facts.encode("utf-8") if isinstance(facts, str) else facts)
    claim_list = []
    if claims is not None:
        claims_path = tmp_path / "claims.csv"
        claims_path.write_text(claims, encoding="utf-8")
        claim_list = read_claims(claims_path)
    run = engine.run(read_facts(facts_path), claim_list)
    assert sum(sum(counts.values()) for counts in run.counts.values()) == len(run.results)
    return run, [(r.partner_id, r.period, r.program_id, r.status, r.errors) for r in run.results]


def both(partner: str, period: str, *errors: str) -> list[tuple]:
    """The two rows (fund, partner_tier) of one record whose every program fails with ``errors``."""
    return [(partner, period, program, "error", list(errors)) for program in ("fund", "partner_tier")]


def test_facts_file_with_a_bom_is_read(engine, tmp_path: Path) -> None:
    run, rows = run_rows(engine, tmp_path, b"\xef\xbb\xbf" + (FACTS_HEADER + "P1,2027-Q1,200000\n").encode())
    assert rows == [("P1", "2027-Q1", "fund", "ok", []), ("P1", "2027-Q1", "partner_tier", "ok", [])]
    assert run.results[1].total == D("4000.00")


def test_non_numeric_values_where_numbers_are_needed(engine, tmp_path: Path) -> None:
    _, rows = run_rows(engine, tmp_path, FACTS_HEADER + 'P1,2027-Q1,lots\nP2,2027-Q1,"1,000"\nP3,2027-Q1,3.5%\n'
                                         "P4,2027-Q1,true\nP5,2027-Q1,2027-01-01\n")
    assert rows == [
        ("P1", "2027-Q1", "fund", "error", ["accrual basis (revenue) must be a number, found str 'lots'"]),
        ("P1", "2027-Q1", "partner_tier", "error", ["qualify_on (revenue) must be a number, found str 'lots'"]),
        ("P2", "2027-Q1", "fund", "error", ["accrual basis (revenue) must be a number, found str '1,000'"]),
        ("P2", "2027-Q1", "partner_tier", "error", ["qualify_on (revenue) must be a number, found str '1,000'"]),
        ("P3", "2027-Q1", "fund", "error", ["accrual basis (revenue) must be a number, found str '3.5%'"]),
        ("P3", "2027-Q1", "partner_tier", "error", ["qualify_on (revenue) must be a number, found str '3.5%'"]),
        ("P4", "2027-Q1", "fund", "error", ["accrual basis (revenue) must be a number, found the boolean true"]),
        ("P4", "2027-Q1", "partner_tier", "error", ["qualify_on (revenue) must be a number, found the boolean true"]),
        ("P5", "2027-Q1", "fund", "error",
         ["accrual basis (revenue) must be a number, found date datetime.date(2027, 1, 1)"]),
        ("P5", "2027-Q1", "partner_tier", "error",
         ["qualify_on (revenue) must be a number, found date datetime.date(2027, 1, 1)"]),
    ]


def test_an_if_condition_that_is_not_true_or_false_is_an_error_row(engine_for) -> None:
    engine = engine_for(program_text(TIERS, "bonuses:\n  - {id: kicker, when: 'if(certified, nps > 50, false)', "
                                            "amount: 'if(certified, 100, 0)'}\n"))
    row = {"partner_id": "P1", "period": "2027-Q1", "revenue": D(1), "nps": D(60)}
    results = [engine.evaluate({**row, "certified": value})["test"] for value in ("yes", True)]
    assert [(result.status, result.errors) for result in results] == [
        ("error", ["rule 'bonus:kicker': if() needs a true or false condition, got text 'yes'"]),
        ("ok", [])]


def test_nan_and_infinity_cells(engine, tmp_path: Path) -> None:
    _, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q1,NaN\nP2,2027-Q1,-Infinity\nP3,2027-Q1,inf\n"
                                         "P4,2027-Q1,100\n")
    assert rows == [
        *both("P1", "2027-Q1", "revenue: 'NaN' is not a number"),
        *both("P2", "2027-Q1", "revenue: '-Infinity' is not a number"),
        *both("P3", "2027-Q1", "revenue: 'inf' is not a number"),
        ("P4", "2027-Q1", "fund", "ok", []), ("P4", "2027-Q1", "partner_tier", "ok", []),
    ]


def test_nan_and_infinity_in_json_lines(engine, tmp_path: Path) -> None:
    _, rows = run_rows(engine, tmp_path, '{"partner_id": "P1", "period": "2027-Q1", "revenue": NaN}\n'
                                         '{"partner_id": "P2", "period": "2027-Q1", "revenue": -Infinity}\n',
                       name="facts.jsonl")
    assert rows == [*both("P1", "2027-Q1", "revenue: NaN is not a number"),
                    *both("P2", "2027-Q1", "revenue: -Infinity is not a number")]


def test_duplicate_partner_and_period_makes_both_records_errors(engine, tmp_path: Path) -> None:
    _, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q1,1\nP2,2027-Q1,2\nP1,2027-Q1,3\n")
    duplicate = "duplicate record for partner P1 and period 2027-Q1 (line 2, line 4)"
    assert rows == [
        ("P1", "2027-Q1", "fund", "error", [duplicate]), ("P1", "2027-Q1", "fund", "error", [duplicate]),
        ("P1", "2027-Q1", "partner_tier", "error", [duplicate]), ("P1", "2027-Q1", "partner_tier", "error", [duplicate]),
        ("P2", "2027-Q1", "fund", "ok", []), ("P2", "2027-Q1", "partner_tier", "ok", []),
    ]


def test_missing_partner_or_period_keeps_its_own_error(engine, tmp_path: Path) -> None:
    # Records lacking an id are not "duplicates" of each other: each keeps what is wrong with it.
    _, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,,1\nP2,2027-Q1,2\n,2027-Q1,3\n,,4\n,,5\n")
    no_ids = ["missing partner_id", "missing period"]
    assert rows == [
        ("", "", "fund", "error", no_ids), ("", "", "fund", "error", no_ids),
        ("", "2027-Q1", "fund", "error", ["missing partner_id"]),
        ("", "", "partner_tier", "error", no_ids), ("", "", "partner_tier", "error", no_ids),
        ("", "2027-Q1", "partner_tier", "error", ["missing partner_id"]),
        *both("P1", "", "missing period"),
        ("P2", "2027-Q1", "fund", "ok", []), ("P2", "2027-Q1", "partner_tier", "ok", []),
    ]


def test_missing_or_duplicated_history_is_an_error_row_of_the_programs_that_read_it(write_program,
                                                                                    tmp_path: Path) -> None:
    program = program_text(TIERS, 'bonuses:\n  - {id: up, when: "revenue > prior.revenue", amount: 100}\n')
    engine = incentives.Engine(incentives.load_programs(write_program(program)))
    facts = tmp_path / "facts.csv"
    facts.write_text(FACTS_HEADER + "P1,2027-Q1,1\nP1,2027-Q1,2\nP1,2027-Q2,3\nP2,2027-Q2,4\n", encoding="utf-8")
    run = engine.run(read_facts(facts), period="2027-Q2")
    assert [(r.partner_id, r.period, r.errors) for r in run.results] == [
        ("P1", "2027-Q2", ["prior.revenue: 2 records for period 2027-Q1 (duplicates); which one is the history "
                           "cannot be told"]),
        ("P2", "2027-Q2", ["missing facts: prior.revenue"])]


def test_unknown_period_labels_and_other_granularities(engine, tmp_path: Path) -> None:
    _, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q5,1\nP2,Q1-2027,2\nP3,2027-07,3\nP4,2026-Q4,4\n"
                                         "P5,2027-q1,5\n")
    assert rows == [
        *both("P1", "2027-Q5", INVALID_PERIOD.format("2027-Q5")),
        *both("P2", "Q1-2027", INVALID_PERIOD.format("Q1-2027")),
        ("P3", "2027-07", "fund", "error", ["'fund' is evaluated per quarter; period '2027-07' is a month"]),
        ("P3", "2027-07", "partner_tier", "error",
         ["'partner_tier' is evaluated per quarter; period '2027-07' is a month"]),
        # the period's dates and the programs' effective windows say why
        ("P4", "2026-Q4", "fund", "error", ["no version of 'fund' is effective in period 2026-Q4 "
                                            "(2026-10-01 to 2026-12-31); versions: v1 effective from 2027-01-01"]),
        ("P4", "2026-Q4", "partner_tier", "error", ["no version of 'partner_tier' is effective in period 2026-Q4 "
                                                    "(2026-10-01 to 2026-12-31); versions: v1 effective from "
                                                    "2027-01-01"]),
        *both("P5", "2027-q1", INVALID_PERIOD.format("2027-q1")),
    ]


def test_huge_and_tiny_numbers_are_errors_of_their_record_not_of_the_run(engine, tmp_path: Path) -> None:
    started = time.perf_counter()
    run, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q1,1e999999\nP2,2027-Q1," + "9" * 40 + "\n"
                                           "P3,2027-Q1,1e-999999\n")
    assert time.perf_counter() - started < 2
    # 40 nines are in range, and computed with every digit: (10^40 − 1) × 3.5% = 3.5·10^38 − 0.035 → …999.97
    assert rows == [*both("P1", "2027-Q1", f"revenue: '1e999999' {RANGE}"),
                    ("P2", "2027-Q1", "fund", "ok", []), ("P2", "2027-Q1", "partner_tier", "ok", []),
                    *both("P3", "2027-Q1", f"revenue: '1e-999999' {RANGE}")]
    assert run.results[3].total == D("34" + "9" * 37 + ".97")


def test_numbers_outside_the_range_are_errors_naming_the_cell(engine, tmp_path: Path) -> None:
    started = time.perf_counter()
    run, rows = run_rows(engine, tmp_path, FACTS_HEADER + "".join([
        "P1,2027-Q1,1e999999999999999999\n",  # the exponent Decimal can just hold
        "P2,2027-Q1,1e-999999999\n",  # 12 bytes that wrote ~3 GB of zeros
        "P3,2027-Q1,1e99999999999999999999999\n",  # beyond what Decimal can hold at all
        "P4,2027-Q1," + "1" * 41 + "\n",  # 41 significant digits, no point: not the plain-digits fast path
        "P5,2027-Q1," + "1" * 20 + "." + "1" * 21 + "\n",  # 41 digits with a point
        "P6,2027-Q1,0." + "0" * 100 + "1\n",  # 1e-101
        "P7,2027-Q1,1e101\n",
        "P8,2027-Q1,-0e-140\n",  # a zero with more decimal places than any number in range
        'P9,2027-Q1,"' + "9" * 100_000 + '"\n',
        "P10,2027-Q1," + "1" * 40 + "\n",  # in range: 40 digits
        "P11,2027-Q1,1e-100\n",  # in range: the smallest exponent
        "P12,2027-Q1,0." + "0" * 137 + "0\n",  # in range: a zero with 139 decimal places
    ]))
    assert time.perf_counter() - started < 2
    assert sorted(rows) == sorted([
        *both("P1", "2027-Q1", f"revenue: '1e999999999999999999' {RANGE}"),
        *both("P2", "2027-Q1", f"revenue: '1e-999999999' {RANGE}"),
        *both("P3", "2027-Q1", f"revenue: '1e99999999999999999999999' {RANGE}"),
        *both("P4", "2027-Q1", f"revenue: '11111111111111111111…' (41 characters) {RANGE}"),
        *both("P5", "2027-Q1", f"revenue: '11111111111111111111…' (42 characters) {RANGE}"),
        *both("P6", "2027-Q1", f"revenue: '0.000000000000000000…' (103 characters) {RANGE}"),
        *both("P7", "2027-Q1", f"revenue: '1e101' {RANGE}"),
        *both("P8", "2027-Q1", f"revenue: '-0e-140' {RANGE}"),
        *both("P9", "2027-Q1", f"revenue: '99999999999999999999…' (100,000 characters) {RANGE}"),
        ("P10", "2027-Q1", "fund", "ok", []), ("P10", "2027-Q1", "partner_tier", "ok", []),  # 40 digits: in range
        ("P11", "2027-Q1", "fund", "ok", []), ("P11", "2027-Q1", "partner_tier", "ok", []),
        ("P12", "2027-Q1", "fund", "ok", []), ("P12", "2027-Q1", "partner_tier", "ok", []),
    ])
    # P10: 1…1 (40 ones) × 3.5% = 3 then 37 eights .885, computed with every digit, rounded half up
    assert {result.partner_id: result.total for result in run.results
            if result.status == "ok" and result.program_id == "partner_tier"} == {
        "P10": D("3" + "8" * 37 + ".89"), "P11": D("0.00"), "P12": D("0.00")}


def test_json_numbers_outside_the_range_are_errors_of_their_record(engine, tmp_path: Path) -> None:
    lines = [
        '{"partner_id": "P1", "period": "2027-Q1", "revenue": 1e99999999999999999999999}',  # Decimal cannot hold it
        '{"partner_id": "P2", "period": "2027-Q1", "revenue": -1e-999999999}',
        '{"partner_id": "P3", "period": "2027-Q1", "revenue": ' + "9" * 5000 + "}",
        '{"partner_id": "P4", "period": "2027-Q1", "revenue": 100, "deals": [1, 2e300]}',
        '{"partner_id": "P5", "period": "2027-Q1", "revenue": "1e-999999999"}',
        '{"partner_id": 1e99999999999999999999999, "period": "2027-Q1", "revenue": 1}',
        '{"partner_id": 1e500, "period": 20271, "revenue": 1}',
    ]
    _, rows = run_rows(engine, tmp_path, "\n".join(lines) + "\n", name="facts.jsonl")
    assert sorted(rows) == sorted([
        *both("", "2027-Q1", f"partner_id: 1e99999999999999999999999 {RANGE}"),
        *both("", "20271", f"partner_id: 1E+500 {RANGE}"),  # a JSON integer in range is an identifier
        *both("P1", "2027-Q1", f"revenue: 1e99999999999999999999999 {RANGE}"),
        *both("P2", "2027-Q1", f"revenue: -1E-999999999 {RANGE}"),
        *both("P3", "2027-Q1", f"revenue: 99999999999999999999… (5,000 characters) {RANGE}"),
        *both("P4", "2027-Q1", f"deals: 2E+300 {RANGE}"),
        *both("P5", "2027-Q1", f"revenue: '1e-999999999' {RANGE}"),
    ])


def test_claims_for_unknown_partners_and_periods_are_error_rows(engine, tmp_path: Path) -> None:
    _, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q1,200000\n",
                       CLAIMS_HEADER + "C1,GHOST,2027-Q1,event,100,2027-01-10,2027-01-20,true\n"
                                       "C2,P1,2027-Q2,event,100,2027-04-10,2027-04-20,true\n")
    assert rows == [
        ("GHOST", "2027-Q1", "fund", "error", ["claims C1 have no facts record for partner GHOST and period 2027-Q1"]),
        ("P1", "2027-Q1", "fund", "ok", []),
        ("P1", "2027-Q2", "fund", "error", ["claims C2 have no facts record for partner P1 and period 2027-Q2"]),
        ("P1", "2027-Q1", "partner_tier", "ok", []),
    ]


def test_claims_naming_a_program_that_takes_no_claims_are_error_rows(engine, tmp_path: Path) -> None:
    # Issue #10, case 1: such a claim used to vanish (no line, no rejection, exit 0).
    run, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q1,200000\nP2,2027-Q1,200000\n",
                         CLAIMS_HEADER.replace("\n", ",program_id\n")
                         + "C1,P1,2027-Q1,event,100,2027-01-10,2027-01-20,true,fnd\n"
                         + "C2,P1,2027-Q1,event,100,2027-01-10,2027-01-20,true,fnd\n"
                         + "C3,P2,2027-Q1,event,100,2027-01-10,2027-01-20,true,partner_tier\n"
                         + "C4,P2,2027-Q1,event,100,2027-01-10,2027-01-20,true,fund\n")
    assert rows == [
        ("P1", "2027-Q1", "fnd", "error",
         ["claims C1, C2 name program 'fnd', which is not loaded (MDF programs loaded: fund); did you mean 'fund'?"]),
        ("P1", "2027-Q1", "fund", "ok", []), ("P1", "2027-Q1", "partner_tier", "ok", []),
        ("P2", "2027-Q1", "fund", "ok", []),
        ("P2", "2027-Q1", "partner_tier", "ok", []),  # the tier program's own result stays, beside the claims'
        ("P2", "2027-Q1", "partner_tier", "error",
         ["claims C3 name 'partner_tier', a tier program: only MDF programs take claims"]),
    ]
    assert [line.rule_id for line in run.results[3].lines] == ["claim:C4"]
    assert run.counts == {"fund": {"ok": 2, "ineligible": 0, "error": 0},
                          "partner_tier": {"ok": 2, "ineligible": 0, "error": 1},
                          "fnd": {"ok": 0, "ineligible": 0, "error": 1}}


def test_claims_without_a_program_when_no_mdf_program_is_loaded_are_error_rows(write_program, tmp_path: Path) -> None:
    engine = incentives.Engine(incentives.load_programs(write_program(TIER_PROGRAM, "tier.yaml")))
    _, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q1,200000\n",
                       CLAIMS_HEADER + "C1,P1,2027-Q1,event,100,2027-01-10,2027-01-20,true\n")
    assert rows == [("P1", "2027-Q1", "(no MDF program)", "error",
                     ["claims C1 are for an MDF program, and none is loaded"]),
                    ("P1", "2027-Q1", "partner_tier", "ok", [])]


def test_claims_with_negative_missing_or_unreadable_amounts_are_rejected_with_reasons(engine, tmp_path: Path) -> None:
    run, rows = run_rows(engine, tmp_path, FACTS_HEADER + "P1,2027-Q1,200000\n",
                         CLAIMS_HEADER + "C1,P1,2027-Q1,event,-100,2027-01-10,2027-01-20,true\n"
                                         "C2,P1,2027-Q1,event,,2027-01-10,2027-01-20,true\n"
                                         "C3,P1,2027-Q1,event,NaN,2027-01-10,2027-01-20,true\n"
                                         "C4,P1,2027-Q1,event,abc,2027-01-10,2027-01-20,maybe\n"
                                         "C5,P1,2027-Q1,event,0,2027-01-10,2027-01-20,true\n"
                                         "C6,P1,2027-Q1,event,300,2027-01-10,2027-01-20,true\n")
    assert rows == [("P1", "2027-Q1", "fund", "ok", []), ("P1", "2027-Q1", "partner_tier", "ok", [])]
    fund = run.results[0]
    assert fund.details["rejected_claims"] == [
        {"claim_id": "C1", "reasons": ["amount -100 is not positive"]},
        {"claim_id": "C2", "reasons": ["missing amount"]},
        {"claim_id": "C3", "reasons": ["amount: 'NaN' is not a number"]},
        {"claim_id": "C4", "reasons": ["amount: 'abc' is not a number", "preapproved: 'maybe' is not true or false",
                                       "the activity was not pre-approved"]},
        {"claim_id": "C5", "reasons": ["amount 0 is not positive"]},
    ]
    assert [(line.rule_id, line.amount) for line in fund.lines] == [("claim:C6", D("150.00"))]


def test_bad_api_records_never_crash_a_run(engine) -> None:
    nested: dict = {"x": 1}
    for _ in range(5000):
        nested = {"a": nested}
    cyclic: dict = {}
    cyclic["self"] = cyclic
    records = [
        42,
        {"partner_id": "P1", "period": "2027-Q1", "revenue": float("nan")},
        {"partner_id": "P2", "period": "2027-Q1", "revenue": float("inf")},
        {"partner_id": "P3", "period": "2027-Q1", "revenue": 100000, "deep": nested},
        {"partner_id": "P4", "period": "2027-Q1", "revenue": 100000, "loop": cyclic},
        {"partner_id": ["P5"], "period": "2027-Q1", "revenue": 1},
        {"partner_id": "P6", "period": "2027-Q1", "revenue": True},
        {"partner_id": "P7", "period": "2027-Q1", "revenue": 10 ** 5000},
        {"partner_id": "P8", "period": "2027-Q1", "revenue": object()},
        {"partner_id": "P9", "period": "2027-Q1", "revenue": "250000"},
    ]
    run = engine.run(records)
    rows = [(r.partner_id, r.period, r.program_id, r.status, r.errors) for r in run.results]
    assert rows == [
        ("", "", "fund", "error", ["a record must be a mapping, not int"]),
        ("", "2027-Q1", "fund", "error", ["partner_id must be a string, not list ['P5']"]),
        ("", "", "partner_tier", "error", ["a record must be a mapping, not int"]),
        ("", "2027-Q1", "partner_tier", "error", ["partner_id must be a string, not list ['P5']"]),
        *both("P1", "2027-Q1", "revenue: NaN is not a number"),
        *both("P2", "2027-Q1", "revenue: Infinity is not a number"),
        *both("P3", "2027-Q1", "the record is nested too deeply"),
        *both("P4", "2027-Q1", "the record is nested too deeply"),
        ("P6", "2027-Q1", "fund", "error", ["accrual basis (revenue) must be a number, found the boolean true"]),
        ("P6", "2027-Q1", "partner_tier", "error", ["qualify_on (revenue) must be a number, found the boolean true"]),
        *both("P7", "2027-Q1", f"revenue: an integer of more than 4,000 digits {RANGE}"),
        *both("P8", "2027-Q1", "revenue: unsupported value of type object"),
        ("P9", "2027-Q1", "fund", "ok", []), ("P9", "2027-Q1", "partner_tier", "ok", []),
    ]


def test_api_numbers_outside_the_range_are_errors_of_their_record(engine) -> None:
    records = [
        {"partner_id": "P1", "period": "2027-Q1", "revenue": 10 ** 40},  # 41 digits
        {"partner_id": "P2", "period": "2027-Q1", "revenue": 1e200},
        {"partner_id": "P3", "period": "2027-Q1", "revenue": D("1E-999999999")},
        {"partner_id": "P4", "period": "2027-Q1", "revenue": "1e999999999999999999"},
        {"partner_id": "P5", "period": "2027-Q1", "revenue": 5e-324},
        {"partner_id": "P6", "period": "2027-Q1", "revenue": 10 ** 40 - 1},  # 40 digits: in range, computed exactly
        {"partner_id": D("1E+5000"), "period": 10 ** 5000, "revenue": 1},  # ids: int(...) would not even print
    ]
    run = engine.run(records)
    rows = [(r.partner_id, r.period, r.program_id, r.status, r.errors) for r in run.results]
    assert sorted(rows) == sorted([
        *both("P1", "2027-Q1", f"revenue: 10000000000000000000… (41 characters) {RANGE}"),
        *both("P2", "2027-Q1", f"revenue: 1E+200 {RANGE}"),
        *both("P3", "2027-Q1", f"revenue: 1E-999999999 {RANGE}"),
        *both("P4", "2027-Q1", f"revenue: '1e999999999999999999' {RANGE}"),
        *both("P5", "2027-Q1", f"revenue: 5E-324 {RANGE}"),
        ("P6", "2027-Q1", "fund", "ok", []), ("P6", "2027-Q1", "partner_tier", "ok", []),
        *both("", "", f"partner_id: 1E+5000 {RANGE}", f"period: an integer of more than 4,000 digits {RANGE}"),
    ])


def test_api_texts_with_lone_surrogates_are_errors_that_can_be_written(engine, tmp_path: Path) -> None:
    records = [
        {"partner_id": "P\ud800", "period": "2027-Q1", "revenue": 1},
        {"partner_id": "P2", "period": "2027-Q1", "revenue": 1, "region": "EM\udfffEA"},
        {"partner_id": "P3", "period": "2027-Q1", "revenue": 1, "tags": ["a", "\ud83d\ude00"]},  # an unjoined pair
        {"partner_id": "P4", "period": "2027-Q1", "revenue": 1, "x": {"\udc00": "NaN"}},
        {"partner_id": "P5", "period": "2027-Q1", "revenue": 1, "note": "\U0001f600 é"},  # valid text
    ]
    run = engine.run(records)
    rows = [(r.partner_id, r.period, r.program_id, r.status, r.errors) for r in run.results]
    assert rows == [
        *both("P2", "2027-Q1", "region: the text holds \\udfff, a lone surrogate, which is not valid Unicode text"),
        *both("P3", "2027-Q1", "tags: the text holds \\ud83d, a lone surrogate, which is not valid Unicode text"),
        *both("P4", "2027-Q1", "the fact name 'x.\\udc00' holds \\udc00, a lone surrogate, which is not valid "
                               "Unicode text"),
        ("P5", "2027-Q1", "fund", "ok", []), ("P5", "2027-Q1", "partner_tier", "ok", []),
        *both("P\\ud800", "2027-Q1", "partner_id: the text holds \\ud800, a lone surrogate, which is not valid "
                                     "Unicode text"),  # the id kept, its surrogate escaped: six characters
    ]
    incentives.write_run(run, tmp_path / "out")  # the error rows can be written
    assert "P\\ud800,2027-Q1,fund,,error" in (tmp_path / "out" / "payouts.csv").read_text(encoding="utf-8")


def test_claims_with_numbers_outside_the_range_or_lone_surrogates_are_rejected(engine) -> None:
    claim = {"claim_id": "C1", "partner_id": "P1", "period": "2027-Q1", "activity": "event", "amount": "100",
             "activity_end": "2027-01-10", "submitted_on": "2027-01-20", "preapproved": True}
    claims = [{**claim, "claim_id": "C1", "amount": "1e-999999999"},
              {**claim, "claim_id": "C2", "amount": "9" * 41},
              {**claim, "claim_id": "C3", "amount": D("1E+101")},
              {**claim, "claim_id": "C4\ud800"},
              {**claim, "claim_id": "C5", "activity": "ev\udc00ent"},
              {**claim, "claim_id": "C6"}]
    run = engine.run([{"partner_id": "P1", "period": "2027-Q1", "revenue": 200000}], claims)
    fund = next(result for result in run.results if result.program_id == "fund")
    assert fund.details["rejected_claims"] == [
        {"claim_id": "C1", "reasons": [f"amount: '1e-999999999' {RANGE}"]},
        {"claim_id": "C2", "reasons": [f"amount: '99999999999999999999…' (41 characters) {RANGE}"]},
        {"claim_id": "C3", "reasons": [f"amount: 1E+101 {RANGE}"]},
        {"claim_id": "C4\\ud800", "reasons": ["claim_id: the text holds \\ud800, a lone surrogate, which is not "
                                               "valid Unicode text"]},
        {"claim_id": "C5", "reasons": ["activity: the text holds \\udc00, a lone surrogate, which is not valid "
                                       "Unicode text",
                                       "activity 'ev\\udc00ent' is not eligible (eligible: event, webinar)"]},
    ]
    assert [line.rule_id for line in fund.lines] == ["claim:C6"]


def test_every_record_of_a_messy_file_yields_its_rows(engine, tmp_path: Path) -> None:
    facts = FACTS_HEADER + "".join([
        "P1,2027-Q1,150000\n", "P2,2027-Q1,NaN\n", "P3,2027-Q9,5\n", "P1,2027-Q1,7\n", ",2027-Q1,1\n",
        "P4,2027-Q1,lots\n", "P5,,3\n", "P6,2027-Q2,600000\n", "P7,2026-Q1,1\n", "\n", "P8,2027-Q1,1e999\n",
    ])
    claims = CLAIMS_HEADER + "C1,P6,2027-Q2,event,100,2027-04-10,2027-04-20,true\n" \
                             "C2,NOBODY,2027-Q2,event,100,2027-04-10,2027-04-20,true\n"
    run, rows = run_rows(engine, tmp_path, facts, claims)
    records = 10  # the blank line is no record; P1 twice gives two error rows per program
    orphan_claims = 1  # NOBODY: one error row for the MDF program
    assert len(rows) == records * len(engine.program_ids) + orphan_claims
    assert run.counts == {"partner_tier": {"ok": 1, "ineligible": 0, "error": 9},
                          "fund": {"ok": 1, "ineligible": 0, "error": 10}}
    written = {(partner, period) for partner, period, *_ in rows}
    assert written == {("P1", "2027-Q1"), ("P2", "2027-Q1"), ("P3", "2027-Q9"), ("", "2027-Q1"), ("P4", "2027-Q1"),
                       ("P5", ""), ("P6", "2027-Q2"), ("P7", "2026-Q1"), ("P8", "2027-Q1"), ("NOBODY", "2027-Q2")}
    assert run.notes == []


# --- values copied into every result: bounded ------------------------------------------------


def test_an_alias_string_bomb_within_the_limits_gives_a_small_run(write_program, tmp_path: Path) -> None:
    # 6 × 150,000 characters once aliases are expanded: within MAX_CHARACTERS, so the program loads;
    # each ineligible record's reasons copy what their rules read, and copies are bounded.
    path = write_program(program_text(TIERS, "defaults:\n"
                                             "  note: &s " + "a" * 150_000 + "\n"
                                             "  blocked: [*s, *s, *s, *s, *s]\n"
                                             "  regions: [" + ", ".join(f"r{n}" for n in range(25)) + "]\n"
                                             "eligibility:\n"
                                             "  - {id: noted, when: \"note == 'ok'\"}\n"
                                             "  - {id: open, when: \"'EMEA' in blocked\"}\n"
                                             "  - {id: served, when: \"'EMEA' in regions\"}\n", id="bombed"))
    engine = incentives.Engine(incentives.load_programs([path]))
    run = engine.run([{"partner_id": f"P{n}", "period": "2027-Q1", "revenue": 100} for n in (1, 2)])
    cut = "'" + "a" * 100 + "…' (150,000 characters)"
    assert [(result.status, [(reason.rule_id, reason.values) for reason in result.reasons])
            for result in run.results] == [("ineligible", [
                ("noted", {"note": cut}),
                ("open", {"blocked": (cut,) * 5}),
                ("served", {"regions": (*(f"r{n}" for n in range(20)), "… (25 items)")}),
            ])] * 2
    incentives.write_run(run, tmp_path / "out")
    written = (tmp_path / "out" / "results.jsonl").read_text(encoding="utf-8")
    assert len(written) < 20_000  # before: the string whole in every reason, 1.8 MB for 2 records
    assert incentives.read_run(tmp_path / "out").results == run.results  # reads back equal


def test_an_error_describing_a_long_text_shows_an_excerpt(write_program) -> None:
    path = write_program(program_text(TIERS, "defaults: {revenue: " + "a" * 150_000 + "}", id="texty"))
    engine = incentives.Engine(incentives.load_programs([path]))
    [result] = engine.run([{"partner_id": "P1", "period": "2027-Q1"}]).results
    assert result.errors == ["qualify_on (revenue) must be a number, found str '" + "a" * 100 + "…' "
                             "(150,000 characters)"]


def test_values_too_large_to_show_are_described_not_printed(engine) -> None:
    # repr() of an integer of more than 4,300 digits raises: a message must never call it on input.
    huge = 10 ** 5000
    run = engine.run([{"partner_id": {"b": huge}, "period": "2027-Q1", "revenue": 1},
                      {"partner_id": "P2", "period": "2027-Q1", "revenue": 1, huge: 1}],
                     [{"claim_id": "C1", "partner_id": "P2", "period": "2027-Q1", "activity": "event",
                       "amount": [huge], "activity_end": {"d": huge}, "submitted_on": "2027-01-02",
                       "preapproved": {"p": huge}}])
    rows = [(r.partner_id, r.program_id, r.status, r.errors) for r in run.results]
    assert rows == [
        ("", "fund", "error", ["partner_id must be a string, not dict a dict too large to show"]),
        ("", "partner_tier", "error", ["partner_id must be a string, not dict a dict too large to show"]),
        ("P2", "fund", "error", ["fact names must be strings, not a int too large to show"]),
        ("P2", "partner_tier", "error", ["fact names must be strings, not a int too large to show"]),
    ]
    from incentives.inputs import normalize_claim

    claim = normalize_claim({"claim_id": "C1", "partner_id": "P2", "period": "2027-Q1", "activity": "event",
                             "amount": [huge], "activity_end": {"d": huge}, "submitted_on": "2027-01-02",
                             "preapproved": {"p": huge}})
    assert claim.problems == (f"amount: an integer of more than 4,000 digits {RANGE}",
                              "activity_end: a dict too large to show is not a YYYY-MM-DD date",
                              "preapproved: a dict too large to show is not true or false")
