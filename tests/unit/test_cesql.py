"""CESQL v1 beyond the TCK: a table of cases for every operator, function, cast and error
kind, parse errors with their positions, user-defined functions, the filter semantics of
`matches`, `explain` and warnings, and property tests (the parser raises nothing but
CesqlParseError; evaluation never raises)."""

from __future__ import annotations

import datetime
import re
import types
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.routing import cesql
from gateway.routing.cesql import CesqlParseError, ErrorKind, Function, Type
from gateway.routing.cesql.casting import string_to_int
from gateway.routing.cesql.patterns import compile_pattern

MISSING = ErrorKind.MISSING_ATTRIBUTE
CAST = ErrorKind.CAST
MATH = ErrorKind.MATH
FUNCTION = ErrorKind.FUNCTION_EVALUATION
NO_FUNCTION = ErrorKind.MISSING_FUNCTION

EVENT: dict[str, object] = {
    "specversion": "1.0",
    "id": "A-1",
    "source": "/shop",
    "type": "com.example.order.created",
    "subject": "eu",
    "amount": "150",
    "ten": 10,
    "flag": True,
    "text": "TRUE",
    "padded": "007",
    "word": "abc",
}


def run(text: str, attributes: dict[str, object] | None = None) -> cesql.Result:
    return cesql.compile(text).evaluate(EVENT if attributes is None else attributes)


def kinds(result: cesql.Result) -> tuple[ErrorKind, ...]:
    return tuple(error.kind for error in result.errors)


def check(text: str, value: object, errors: tuple[ErrorKind, ...]) -> None:
    result = run(text)
    assert type(result.value) is type(value), result
    assert result.value == value, result
    assert kinds(result) == errors, result


LITERALS = [
    ("0", 0, ()),
    ("+7", 7, ()),
    ("-2147483648", -2147483648, ()),
    ("2147483647", 2147483647, ()),
    ("007", 7, ()),
    ("tRuE", True, ()),
    ("false", False, ()),
    ("'it''s'", "it's", ()),
    ('"say ""hi"""', 'say "hi"', ()),
    ("'a\\'b'", "a'b", ()),
    ('"a\\"b"', 'a"b', ()),
    ("'back\\\\slash'", "back\\slash", ()),
    ("'keep\\n'", "keep\\n", ()),
    ("'é😀'", "é😀", ()),
    ("''", "", ()),
    ("(((1)))", 1, ()),
]

ATTRIBUTES = [
    ("id", "A-1", ()),
    ("SOURCE", "/shop", ()),  # identifiers are case-insensitive (TCK `EXISTS SOURCE`)
    ("ten", 10, ()),
    ("flag", True, ()),
    ("nothere", False, (MISSING,)),  # type unknown: Boolean zero (spec 3.2)
    ("nothere + 1", 0, (MISSING,)),
    ("CONCAT(nothere)", "", (MISSING,)),
    ("ten = 10", True, ()),
    ("ten = '10'", True, ()),
    ("flag = 'true'", True, ()),
]

ARITHMETIC = [
    ("1 + 2 * 3", 7, ()),
    ("(1 + 2) * 3", 9, ()),
    ("10 - 2 - 3", 5, ()),  # left to right
    ("100 / 10 / 5", 2, ()),
    ("7 / 2", 3, ()),
    ("-7 / 2", -3, ()),  # truncated toward zero (spec 3.4.2)
    ("7 / -2", -3, ()),
    ("-7 % 2", -1, ()),  # the remainder has the sign of the dividend
    ("7 % -2", 1, ()),
    ("5 / 0", 0, (MATH,)),
    ("5 % 0", 0, (MATH,)),
    ("(5 / 0) + 1", 0, (MATH,)),
    ("2147483647 + 1", 2147483647, (MATH,)),  # saturates, like ABS (spec 3.5.2)
    ("-2147483648 - 1", -2147483648, (MATH,)),
    ("65536 * 65536", 2147483647, (MATH,)),
    ("-2147483648 / -1", 2147483647, (MATH,)),
    ("--2147483648", 2147483647, (MATH,)),
    ("(2147483647 + 1) - 1", 0, (MATH,)),  # a failed operand fails the operator
    ("'5' + 3", 8, ()),
    ("padded * 2", 14, ()),
    ("'+5' - '-5'", 10, ()),
    ("TRUE + TRUE", 2, ()),
    ("'abc' + 1", 0, (CAST,)),
    ("' 5' + 1", 0, (CAST,)),  # no whitespace in String -> Integer (spec 3.7)
    ("'2147483648' + 0", 0, (CAST,)),
    ("'5.0' + 0", 0, (CAST,)),
    ("-'10'", -10, ()),
    ("-TRUE", -1, ()),
    ("nothere + (1 / 0)", 0, (MISSING, MATH)),  # complete evaluation reports both
    ("nothere / 0", 0, (MISSING,)),
]

COMPARISON = [
    ("1 < 2", True, ()),
    ("2 <= 2", True, ()),
    ("3 > 2", True, ()),
    ("2 >= 3", False, ()),
    ("'10' > '9'", True, ()),  # Integer-only operators cast both sides
    ("amount > 100", True, ()),
    ("INT(amount) >= 150", True, ()),
    ("word > 1", False, (CAST,)),
    ("nothere < 1", False, (MISSING,)),
    ("1 = 1", True, ()),
    ("1 != 1", False, ()),
    ("1 <> 2", True, ()),
    ("'a' = 'A'", False, ()),  # case-sensitive (spec 3.4.2)
    ("1 = '1'", True, ()),  # the right operand's type wins: 1 -> '1'
    ("'01' = 1", True, ()),  # '01' -> 1
    ("1 = '01'", False, ()),  # 1 -> '1'
    ("TRUE = 'true'", True, ()),
    ("TRUE = 'TRUE'", False, ()),
    ("'TRUE' = TRUE", True, ()),
    ("'yes' = TRUE", False, (CAST,)),
    ("0 = FALSE", True, ()),
    ("ten = amount", False, ()),  # '150' is a String: 10 -> '10'
    ("amount = ten", False, ()),  # 10 is an Integer: '150' -> 150
    ("padded = ten", False, ()),
    ("text = flag", True, ()),  # 'TRUE' -> true
    ("flag = text", False, ()),  # true -> 'true'
    ("1 = 1 = TRUE", True, ()),
    ("nothere = nothere", False, (MISSING, MISSING)),
]

LOGIC = [
    ("TRUE AND FALSE", False, ()),
    ("TRUE OR FALSE", True, ()),
    ("TRUE XOR TRUE", False, ()),
    ("FALSE XOR TRUE", True, ()),
    ("FALSE AND nothere", False, ()),  # short-circuit: never looked up
    ("TRUE OR nothere", True, ()),
    ("nothere AND TRUE", False, (MISSING,)),
    ("nothere OR TRUE", False, (MISSING,)),  # the right side still runs (spec 3.4.2)
    ("nothere XOR nothing", False, (MISSING, MISSING)),
    ("TRUE AND (1 != 1 / 0)", False, (MATH,)),
    ("'true' AND 1", True, ()),
    ("'maybe' OR TRUE", False, (CAST,)),
    ("TRUE OR TRUE AND FALSE", False, ()),  # one level, left to right (spec 3.6)
    ("FALSE AND TRUE OR TRUE", True, ()),
    ("NOT TRUE", False, ()),
    ("NOT 'false'", True, ()),
    ("NOT 0", True, ()),
    ("NOT 10", False, ()),  # Integer -> Boolean MUST be supported (spec 3.7)
    ("NOT 'abc'", False, (CAST,)),
    ("NOT nothere", False, (MISSING,)),
    ("NOT NOT TRUE", True, ()),
    ("NOT TRUE = FALSE", True, ()),  # NOT binds tightest: (NOT TRUE) = FALSE
    ("NOT (1 = 2)", True, ()),
    ("-2 * 3", -6, ()),
    ("2 * 3 IN (6)", 0, ()),  # IN binds tighter than `*`: 2 * (3 IN (6)) = 2 * FALSE
    ("'a' LIKE 'a' = TRUE", True, ()),
    ("1 + 1 = 2 AND 2 > 1", True, ()),
]

LIKE = [
    ("type LIKE 'com.example.%'", True, ()),
    ("type LIKE 'com.other.%'", False, ()),
    ("type NOT LIKE 'com.other.%'", True, ()),
    ("type LIKE '%.created'", True, ()),
    ("type LIKE '%order%'", True, ()),
    ("type LIKE 'com._xample.%'", True, ()),
    ("type LIKE 'COM.%'", False, ()),  # case-sensitive
    ("word LIKE 'abc'", True, ()),
    ("word LIKE 'ab'", False, ()),
    ("word LIKE '___'", True, ()),
    ("word LIKE '____'", False, ()),
    ("word LIKE '%'", True, ()),
    ("'' LIKE '%'", True, ()),
    ("'' LIKE '_'", False, ()),
    ("'a%c' LIKE 'a\\%c'", True, ()),
    ("'abc' LIKE 'a\\%c'", False, ()),
    ("'a_c' LIKE 'a\\_c'", True, ()),
    ("'a\\c' LIKE 'a\\c'", True, ()),  # a backslash before anything else is literal
    ("'a\\xc' LIKE 'a\\\\\\\\_c'", True, ()),  # `\\` in the pattern is one backslash
    ("'line\nbreak' LIKE 'line_break'", True, ()),
    ("ten LIKE '1%'", True, ()),
    ("flag LIKE 'tr__'", True, ()),
    ("nothere LIKE '%'", False, (MISSING,)),
    ("nothere NOT LIKE 'x'", False, (MISSING,)),
    ("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' LIKE '%a%a%a%a%a%a%a%a%b'", False, ()),
]

EXISTS_AND_IN = [
    ("EXISTS subject", True, ()),
    ("EXISTS nothere", False, ()),
    ("NOT EXISTS nothere", True, ()),
    ("EXISTS Subject", True, ()),
    ("EXISTS 123", False, ()),
    ("1 IN (1, 2)", True, ()),
    ("3 NOT IN (1, 2)", True, ()),
    ("'1' IN (1, 2)", True, ()),  # elements take x's type
    ("1 IN ('1', 'x')", False, (CAST,)),
    ("'x' IN ('a', 'b', 'x')", True, ()),
    ("source IN (subject, '/shop')", True, ()),
    ("source IN (subject, id)", False, ()),
    ("ten IN (amount, 10)", True, ()),
    ("ten IN (word, 10)", False, (CAST,)),
    ("flag IN ('TRUE')", True, ()),
    ("nothere IN (1)", False, (MISSING,)),
    ("1 IN (nothere, 1)", False, (MISSING,)),
    ("nothere NOT IN (1)", False, (MISSING,)),
    ("type IN ('com.example.order.created') AND amount > 100", True, ()),
]

FUNCTIONS = [
    ("LENGTH('héllo😀')", 6, ()),  # characters, not bytes
    ("length(TRUE)", 4, ()),  # function names are case-insensitive
    ("LENGTH(nothere)", 0, (MISSING,)),
    ("CONCAT()", "", ()),
    ("CONCAT('a', 1, TRUE)", "a1true", ()),
    ("CONCAT_WS('-', 'a', 'b')", "a-b", ()),
    ("CONCAT_WS('-')", "", ()),
    ("CONCAT_WS()", False, (NO_FUNCTION,)),
    ("LOWER('ÀBC')", "àbc", ()),
    ("UPPER('straße')", "STRASSE", ()),
    ("TRIM('\u3000\t a b \u00a0\n')", "a b", ()),
    ("TRIM('\x1fa\x1f')", "\x1fa\x1f", ()),  # control characters are not whitespace
    ("LEFT('abc', 0)", "", ()),
    ("LEFT('abc', 2)", "ab", ()),
    ("LEFT('abc', 5)", "abc", ()),
    ("LEFT('abc', -1)", "abc", (FUNCTION,)),  # spec 3.5.1: x and an error
    ("RIGHT('abc', 0)", "", ()),
    ("RIGHT('abc', 2)", "bc", ()),
    ("RIGHT('abc', 9)", "abc", ()),
    ("RIGHT('abc', -1)", "abc", (FUNCTION,)),
    ("LEFT('abc', -1) = 'abc'", False, (FUNCTION,)),  # the error fails the comparison
    ("SUBSTRING('abcdef', 3)", "cdef", ()),
    ("SUBSTRING('abcdef', 6)", "f", ()),
    ("SUBSTRING('abcdef', 7)", "", (FUNCTION,)),
    ("SUBSTRING('abcdef', -6)", "abcdef", ()),
    ("SUBSTRING('abcdef', -7)", "", (FUNCTION,)),
    ("SUBSTRING('abcdef', 0)", "", ()),
    ("SUBSTRING('abcdef', 2, 0)", "", ()),
    ("SUBSTRING('abcdef', 2, 100)", "bcdef", ()),
    ("SUBSTRING('abcdef', -2, 1)", "e", ()),
    ("SUBSTRING('abcdef', 2, -1)", "", (FUNCTION,)),
    ("SUBSTRING('', 1)", "", (FUNCTION,)),
    ("SUBSTRING('abc')", False, (NO_FUNCTION,)),
    ("ABS(-5)", 5, ()),
    ("ABS(-2147483648)", 2147483647, (MATH,)),
    ("ABS(-2147483648) > 0", False, (MATH,)),
    ("INT('-12')", -12, ()),
    ("INT('x')", 0, (CAST,)),
    ("INT(nothere)", 0, (MISSING,)),
    ("BOOL('False')", False, ()),
    ("BOOL(2)", True, ()),
    ("BOOL('1')", False, (CAST,)),
    ("STRING(-1)", "-1", ()),
    ("STRING(FALSE)", "false", ()),
    ("STRING(ten)", "10", ()),
    ("NOSUCH(1)", False, (NO_FUNCTION,)),
    ("NOSUCH(1) OR TRUE", False, (NO_FUNCTION,)),
    ("LENGTH(CONCAT(LOWER('AB'), SUBSTRING('xyz', 2)))", 4, ()),
]


@pytest.mark.parametrize(
    ("text", "value", "errors"),
    LITERALS + ATTRIBUTES + ARITHMETIC + COMPARISON + LOGIC + LIKE + EXISTS_AND_IN + FUNCTIONS,
)
def test_evaluation(text: str, value: object, errors: tuple[ErrorKind, ...]) -> None:
    check(text, value, errors)


@pytest.mark.parametrize(
    ("value", "seen_as"),
    [
        (b"\x00\x01", "AAE="),  # Binary: base64, its canonical string (CE core Type System)
        (datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC), "2024-05-01T12:00:00Z"),
        (2**40, "1099511627776"),  # not a 32-bit Integer: only its text
        (3.5, "3.5"),
    ],
)
def test_attributes_of_other_types_are_strings(value: object, seen_as: str) -> None:
    attributes = {**EVENT, "odd": value}
    assert cesql.compile("odd").evaluate(attributes).value == seen_as
    assert cesql.compile(f"odd = '{seen_as}'").matches(attributes)


def test_a_wide_integer_attribute_fails_an_integer_cast() -> None:
    result = cesql.compile("big > 1").evaluate({**EVENT, "big": 2**40})
    assert (result.value, kinds(result)) == (False, (CAST,))


def test_errors_are_reported_on_every_evaluation_even_when_constant() -> None:
    expression = cesql.compile("1 / 0 = 0")
    for _ in range(2):
        assert kinds(expression.evaluate({})) == (MATH,)


def test_evaluation_does_not_mutate_the_attributes() -> None:
    frozen = types.MappingProxyType(dict(EVENT))
    expression = cesql.compile("CONCAT(id, type) LIKE '%' AND nothere = 1 OR ten IN (1, 10)")
    expression.evaluate(frozen)
    expression.matches(frozen)
    assert dict(frozen) == EVENT


# -- matches (filter semantics, spec 1.2) -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("type LIKE 'com.example.%' AND INT(amount) > 100", True),
        ("type LIKE 'com.example.%' AND INT(amount) > 200", False),
        ("EXISTS amount AND INT(amount) > 100", True),
        ("EXISTS nothere AND INT(nothere) > 100", False),
        ("INT(nothere) > 100", False),  # an error never passes
        ("LEFT('abc', -1) = 'abc' OR TRUE", False),
        ("TRUE OR nothere", True),  # short-circuited: no error happened
        ("ten", False),  # an Integer is not a Boolean
        ("'true'", False),
        ("flag", True),
        ("NOT 10", False),
    ],
)
def test_matches(text: str, passes: bool) -> None:
    assert cesql.compile(text).matches(EVENT) is passes


def test_matches_stops_at_the_first_error_while_evaluate_goes_on() -> None:
    calls: list[str] = []

    def tick() -> bool:
        calls.append("tick")
        return True

    expression = cesql.compile("nothere = 1 OR TICK()", [Function("TICK", (), Type.BOOLEAN, tick)])
    assert expression.matches(EVENT) is False
    assert calls == []
    assert kinds(expression.evaluate(EVENT)) == (MISSING,)
    assert calls == ["tick"]


# -- explain and warnings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("type = 'x'", "evaluated to false"),
        ("type LIKE 'com.%'", "evaluated to true"),
        ("INT(nothere) > 1", "missing attribute 'nothere'"),
        ("word = 1", "cast error: cannot cast 'abc' to Integer"),
        ("1 / 0 = 0", "math error: division by zero"),
        ("LEFT(word, -1) = ''", "function error: LEFT: the length must not be negative (-1)"),
        ("NOSUCH() OR TRUE", "no function NOSUCH taking 0 argument(s)"),
        ("nothere = nothing", "missing attribute 'nothere' (and 1 more error)"),
        ("1 + 2", "evaluated to an Integer (3), not a Boolean"),
        ("type", "evaluated to a String ('com.example.order.created'), not a Boolean"),
    ],
)
def test_explain(text: str, reason: str) -> None:
    assert cesql.compile(text).explain(EVENT) == reason


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("a OR b AND c", "AND, OR and XOR share one precedence level"),
        ("NOT a = b", "NOT binds tighter than every other operator"),
        ("NOT a LIKE 'x%'", "NOT binds tighter than every other operator"),
        ("NOSUCH(1)", "no function NOSUCH taking 1 argument(s): the call is always false"),
        ("SUBSTRING('a')", "no function SUBSTRING taking 1 argument(s)"),
        ("averyveryverylongattributename = 1", "longer than 20 characters"),
        # Subscriptions API 3.2.4: a filter passes only on Boolean true.
        ("INT(amount) + 1", "the value is an Integer, never a Boolean: no event matches"),
        ("'yes'", "the value is a String, never a Boolean"),
        ("CONCAT(subject, 'x')", "a String, never a Boolean"),
    ],
)
def test_warnings(text: str, warning: str) -> None:
    assert any(warning in w for w in cesql.compile(text).warnings)


@pytest.mark.parametrize(
    "text",
    [
        "a AND b AND c", "(a OR b) AND c", "NOT (a = b)", "NOT a AND b", "NOT EXISTS a",
        "INT(a) > 1", "a", "BOOL(a)", "TRUE",
    ],
)
def test_no_warnings(text: str) -> None:
    assert cesql.compile(text).warnings == ()


# -- parse errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("", 1, 1, "empty expression"),
        ("   ", 1, 4, "empty expression"),
        ("ABC(", 1, 5, "unexpected end of expression"),
        ("1 +", 1, 4, "unexpected end of expression"),
        ("(1", 1, 3, "expected ')', found end of expression"),
        ("1 2", 1, 3, "unexpected '2'"),
        ("x LIKE 1", 1, 8, "the pattern of LIKE must be a string literal"),
        ("x LIKE y", 1, 8, "the pattern of LIKE must be a string literal"),
        ("x IN ()", 1, 7, "the set of IN must not be empty"),
        ("x IN 1", 1, 6, "expected '(', found '1'"),
        ("x NOT y", 1, 7, "expected LIKE or IN after NOT"),
        ("'abc", 1, 1, "unterminated string literal"),
        ("'abc\\'", 1, 1, "unterminated string literal"),
        ("2147483648", 1, 1, "integer literal out of the 32-bit range"),
        ("-2147483649", 1, 1, "integer literal out of the 32-bit range"),
        ("99999999999999999999999", 1, 1, "integer literal out of the 32-bit range"),
        ("my_ext = 1", 1, 1, "'my_ext' is not an attribute name (letters and digits)"),
        ("f1(2)", 1, 1, "'f1' is not a function name"),
        ("EXISTS 'a'", 1, 8, "is not an attribute name after EXISTS"),
        ("EXISTS", 1, 7, "expected an attribute name after EXISTS"),
        ("a == b", 1, 4, "unexpected '='"),
        ("a ! b", 1, 3, "unexpected character '!'"),
        ("a # b", 1, 3, "unexpected character '#'"),
        ("+a", 1, 2, "'+' must be followed by an integer literal"),
        ("TRUE()", 1, 5, "unexpected '('"),
        ("f(1,)", 1, 5, "unexpected ')'"),
        ("émoji = 1", 1, 1, "unexpected character 'é'"),
        ("x = 1 AND\n  (y = )", 2, 8, "unexpected ')'"),
        ("a AND\r\nb c", 2, 3, "unexpected 'c'"),
        ("(" * 80 + "1" + ")" * 80, 1, 65, "expression nested too deeply"),
        ("NOT " * 80 + "TRUE", 1, 257, "expression nested too deeply"),
        ("1" + " + 1" * 100, 1, 1, "expression nested too deeply"),
    ],
)
def test_parse_errors(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(CesqlParseError) as caught:
        cesql.compile(text)
    error = caught.value
    assert (error.line, error.column) == (line, column)
    assert message in error.message
    assert str(error) == f"{line}:{column}: {error.message}"


def test_a_long_flat_chain_within_the_limit_compiles_and_runs() -> None:
    expression = cesql.compile(" OR ".join(f"id = 'x{i}'" for i in range(60)))
    assert expression.evaluate(EVENT) == cesql.Result(False, ())


# -- user-defined functions (spec 3.5) --------------------------------------------------------


def _udf(name: str, *params: Type, variadic: Type | None = None) -> Function:
    return Function(name, params, Type.STRING, lambda *a: "".join(map(str, a)), variadic)


def test_user_defined_functions_are_cast_dispatched_and_case_insensitive() -> None:
    functions = [
        Function("REPEAT", (Type.STRING, Type.INTEGER), Type.STRING, lambda s, n: s * n),
        Function("JOIN", (Type.STRING,), Type.STRING, lambda sep, *s: sep.join(s), Type.STRING),
    ]
    assert cesql.compile("repeat(ten, '2')", functions).evaluate(EVENT).value == "1010"
    assert cesql.compile("JOIN('/', 1, TRUE, id)", functions).evaluate(EVENT).value == "1/true/A-1"


@pytest.mark.parametrize(
    ("implementation", "message"),
    [
        (lambda s: 1 / 0, "BOOM: ZeroDivisionError: division by zero"),
        (lambda s: "not a bool", "BOOM returned str, not Boolean"),
        (lambda s: 1, "BOOM returned int, not Boolean"),
    ],
)
def test_a_failing_user_function_yields_zero_and_an_error(
    implementation: Any, message: str
) -> None:
    function = Function("BOOM", (Type.STRING,), Type.BOOLEAN, implementation)
    result = cesql.compile("BOOM(id)", [function]).evaluate(EVENT)
    assert result == cesql.Result(False, (cesql.EvalError(FUNCTION, message),))


def test_user_functions_run_on_every_evaluation() -> None:
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return len(calls)

    expression = cesql.compile("COUNT() + 0", [Function("COUNT", (), Type.INTEGER, count)])
    assert [expression.evaluate({}).value for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("functions", "problem"),
    [
        ([_udf("F", Type.STRING), _udf("F", Type.INTEGER)], "defined twice with the same arity"),
        (
            [_udf("F", variadic=Type.STRING), _udf("F", Type.STRING, variadic=Type.STRING)],
            "more than one variadic",
        ),
        ([_udf("F", Type.STRING), _udf("F", variadic=Type.STRING)], "more fixed parameters"),
        (
            [
                _udf("F", Type.STRING, Type.STRING),
                _udf("F", Type.STRING, Type.STRING, variadic=Type.STRING),
            ],
            "more fixed parameters",
        ),
        ([_udf("CONCAT", Type.STRING)], "more fixed parameters"),  # clashes with a built-in
        ([_udf("LENGTH", Type.STRING)], "defined twice"),
        ([_udf("BAD1", Type.STRING)], "invalid function name"),
        ([Function("F", ("String",), Type.STRING, str)], "must be cesql Types"),  # type: ignore[arg-type]
    ],
)
def test_invalid_function_sets_are_rejected(functions: list[Function], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        cesql.compile("TRUE", functions)


def test_valid_overloads_are_accepted() -> None:
    functions = [
        _udf("F", Type.STRING),
        _udf("F", Type.STRING, Type.STRING),
        _udf("F", Type.STRING, Type.STRING, Type.STRING, variadic=Type.STRING),
        _udf("LENGTH", Type.STRING, Type.STRING),  # a new arity beside a built-in
    ]
    expression = cesql.compile("CONCAT_WS(',', F('a'), F(1, 2), F(1, 2, 3, 4, 5))", functions)
    assert expression.evaluate({}).value == "a,12,12345"


# -- property tests -----------------------------------------------------------------------------

NAMES = ["a", "b", "n", "s", "nothere"]
FUNCTION_NAMES = [
    "LENGTH", "CONCAT", "CONCAT_WS", "LOWER", "UPPER", "TRIM", "LEFT", "RIGHT", "SUBSTRING",
    "ABS", "INT", "BOOL", "STRING", "NOSUCH",
]  # fmt: skip


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


atoms = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(str),
    st.text(alphabet="ab%_ \\'\"1-", max_size=6).map(_quote),
    st.sampled_from(["TRUE", "false", "EXISTS a", "EXISTS nothere"]),
    st.sampled_from(NAMES),
)


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(
        ["+", "-", "*", "/", "%", "=", "!=", "<>", "<", "<=", ">", ">=", "AND", "OR", "XOR"]
    )
    return st.one_of(
        st.tuples(children, binary, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["NOT ", "-"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, st.booleans(), st.text(alphabet="ab%_\\", max_size=5)).map(
            lambda t: f"({t[0]} {'NOT ' if t[1] else ''}LIKE {_quote(t[2])})"
        ),
        st.tuples(children, st.lists(children, min_size=1, max_size=3)).map(
            lambda t: f"({t[0]} IN ({', '.join(t[1])}))"
        ),
        st.tuples(st.sampled_from(FUNCTION_NAMES), st.lists(children, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
    )


expressions = st.recursive(atoms, _compound, max_leaves=12)
attribute_maps = st.dictionaries(
    st.sampled_from(NAMES[:-1]),
    st.one_of(st.text(max_size=8), st.integers(-(2**31), 2**31 - 1), st.booleans()),
)
TOKENS = [
    "(", ")", ",", "'", '"', "\\", "%", "_", "-", "+", "*", "/", "=", "!=", "<>", "<", ">=",
    "AND", "or", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "false", "a", "b1", "F", "LEFT",
    "0", "2147483648", "'x'", "\n", " ", "é", "\x00",
]  # fmt: skip
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sound(expression: cesql.Expression, attributes: dict[str, object]) -> None:
    result = expression.evaluate(attributes)
    assert isinstance(result.value, bool | int | str)
    if type(result.value) is int:
        assert -(2**31) <= result.value <= 2**31 - 1
    assert all(isinstance(error, cesql.EvalError) for error in result.errors)
    assert expression.matches(attributes) is (result.value is True and not result.errors)
    assert isinstance(expression.explain(attributes), str)


@PROPERTY
@given(text=st.one_of(st.text(max_size=40), st.lists(st.sampled_from(TOKENS)).map("".join)))
def test_the_parser_raises_only_parse_errors(text: str) -> None:
    try:
        expression = cesql.compile(text)
    except CesqlParseError as error:
        position = (error.line, error.column)
    else:
        _sound(expression, {"a": "1", "b1": True})
        return
    assert position >= (1, 1)
    assert position <= (text.count("\n") + 1, len(text) + 1)


@PROPERTY
@given(text=expressions, attributes=attribute_maps)
def test_evaluation_never_raises(text: str, attributes: dict[str, object]) -> None:
    _sound(cesql.compile(text), attributes)


def _reference_like(pattern: str) -> re.Pattern[str]:
    parts, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append({"%": ".*", "_": "."}.get(pattern[i], re.escape(pattern[i])))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


@PROPERTY
@given(pattern=st.text(alphabet="ab%_\\", max_size=8), subject=st.text(alphabet="ab%_\\\n"))
def test_like_agrees_with_a_regex_reference(pattern: str, subject: str) -> None:
    expected = _reference_like(pattern).fullmatch(subject) is not None
    assert compile_pattern(pattern)(subject) is expected


@PROPERTY
@given(x=st.integers(-(2**31), 2**31 - 1), y=st.integers(-(2**31), 2**31 - 1))
def test_integer_arithmetic_is_32_bit_and_truncating(x: int, y: int) -> None:
    exact = {"+": x + y, "-": x - y, "*": x * y}
    if y:
        quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        exact["/"] = quotient
        exact["%"] = x - y * quotient
    for symbol, value in exact.items():
        result = cesql.compile(f"x {symbol} y").evaluate({"x": x, "y": y})
        if -(2**31) <= value <= 2**31 - 1:
            assert result == cesql.Result(value, ())
        else:
            assert kinds(result) == (MATH,)
            assert result.value == (2**31 - 1 if value > 0 else -(2**31))


@PROPERTY
@given(text=st.one_of(st.text(max_size=14), st.from_regex(r"[+-]?0*[0-9]{1,11}", fullmatch=True)))
def test_string_to_integer_is_strict_base_10(text: str) -> None:
    errors: list[object] = []
    value = string_to_int(text, lambda kind, message: errors.append(kind))
    if re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII) and -(2**31) <= int(text) < 2**31:
        assert (value, errors) == (int(text), [])
    else:
        assert (value, errors) == (None, [CAST])
