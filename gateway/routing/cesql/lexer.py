"""Splits CESQL text into tokens (grammar `CESQLLexer.g4`; spec 2.2-2.4).

Keywords are case-insensitive (spec 2); words are classified here, and whether a word is a valid
identifier or function name is decided by the parser, which knows where it stands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.routing.cesql.errors import CesqlParseError

KEYWORDS = frozenset({"AND", "OR", "XOR", "NOT", "LIKE", "EXISTS", "IN", "TRUE", "FALSE"})
_SPACE = frozenset(" \t\r\n")  # CESQLLexer.g4 SPACE
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_DIGITS = frozenset("0123456789")
_SYMBOLS2 = frozenset({"!=", "<>", "<=", ">="})
_SYMBOLS1 = frozenset("=<>+-*/%(),")


class Kind(enum.Enum):
    INTEGER = "integer"
    STRING = "string"
    NAME = "name"
    KEYWORD = "keyword"
    SYMBOL = "symbol"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One token; `value` is the keyword in upper case, a string literal's content unescaped,
    or the text as written; `offset` is where it starts in the source."""

    kind: Kind
    value: str
    offset: int
    text: str


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = source.count("\n", 0, offset) + 1
    column = offset - source.rfind("\n", 0, offset)
    return line, column


def fail(source: str, offset: int, message: str) -> CesqlParseError:
    line, column = position(source, offset)
    return CesqlParseError(message, line, column)


def tokenize(source: str) -> list[Token]:
    """The tokens of `source`, ending with an END token; raises CesqlParseError."""
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c in _SPACE:
            i += 1
        elif c in _WORD:
            j = i + 1
            while j < n and source[j] in _WORD:
                j += 1
            tokens.append(_word(source[i:j], i))
            i = j
        elif c == "'" or c == '"':
            value, j = _string(source, i)
            tokens.append(Token(Kind.STRING, value, i, source[i:j]))
            i = j
        elif source[i : i + 2] in _SYMBOLS2:
            tokens.append(Token(Kind.SYMBOL, source[i : i + 2], i, source[i : i + 2]))
            i += 2
        elif c in _SYMBOLS1:
            tokens.append(Token(Kind.SYMBOL, c, i, c))
            i += 1
        else:
            raise fail(source, i, f"unexpected character {c!r}")
    tokens.append(Token(Kind.END, "", n, ""))
    return tokens


def _word(text: str, offset: int) -> Token:
    if all(ch in _DIGITS for ch in text):
        return Token(Kind.INTEGER, text, offset, text)
    upper = text.upper()
    if upper in KEYWORDS:
        return Token(Kind.KEYWORD, upper, offset, text)
    return Token(Kind.NAME, text, offset, text)


def _string(source: str, start: int) -> tuple[str, int]:
    """A quoted literal from `start`: its content and the offset after the closing quote.

    Spec 2.2: the delimiter is escaped with a backslash; the lexer also takes it doubled
    (CESQLLexer.g4 SQUOTA_STRING / DQUOTA_STRING). `\\\\` is one backslash; any other backslash
    pair is kept as written, so LIKE patterns keep their `\\%` and `\\_` escapes.
    """
    quote = source[start]
    parts: list[str] = []
    i, n = start + 1, len(source)
    while i < n:
        c = source[i]
        if c == "\\" and i + 1 < n:
            nxt = source[i + 1]
            parts.append(nxt if nxt == quote or nxt == "\\" else c + nxt)
            i += 2
        elif c == quote:
            if i + 1 < n and source[i + 1] == quote:
                parts.append(quote)
                i += 2
            else:
                return "".join(parts), i + 1
        else:
            parts.append(c)
            i += 1
    raise fail(source, start, "unterminated string literal")
