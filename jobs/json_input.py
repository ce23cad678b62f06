"""JSON from outside (request bodies, webhook deliveries, a build's log lines): one reader
whose every refusal is an ``InvalidJSON``, a ``ValueError`` and an ``InvalidRequest``.

``json.loads`` alone lets three kinds of text through that break the code after it:
- nesting deeper than the interpreter's recursion limit raises ``RecursionError``
  (about 1,000 levels: 2 KB of ``[``), which is not a ``ValueError`` (issue 20);
- ``\\ud800`` escapes decode to lone surrogates, which no UTF-8 encoder takes: the
  first ``encode``, SQLite write or JSON answer quoting the value raises;
- ``NaN`` and ``Infinity`` (and ``1e999``, read as infinity) are not JSON (RFC 8259)
  and cannot be written back as JSON.

``read_json`` refuses all three, and nesting deeper than ``MAX_DEPTH`` too, so that
whatever it returns can be walked, stored, logged and quoted in an answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, NoReturn

from .errors import InvalidRequest

MAX_DEPTH = 64
"""Arrays and objects nested deeper than this are refused. The deliveries forges send
nest about 5 deep; the API's bodies 1."""


class InvalidJSON(InvalidRequest, ValueError):
    """Text ``read_json`` refuses; the message says why (and where, for a syntax error)."""


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidJSON(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidJSON(f"the number {text[:20]} is too large")
    return number


def read_json(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``text``, or ``InvalidJSON``. Pure.

    The value holds only valid Unicode strings (keys too), finite numbers, and arrays
    and objects nested at most ``max_depth`` deep (``[]`` is 1 deep, ``[[]]`` 2).
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidJSON(f"arrays and objects are nested more than {max_depth} deep") from None
    except InvalidJSON:
        raise
    except json.JSONDecodeError as e:
        raise InvalidJSON(str(e)) from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise InvalidJSON("a number has too many digits") from None
    _check(value, max_depth)
    return value


def _check(value: Any, max_depth: int) -> None:
    """Refuse lone surrogates and nesting deeper than ``max_depth``; iterative, so that
    the walk itself cannot run out of stack."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise InvalidJSON(f"arrays and objects are nested more than {max_depth} deep")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
            children: Iterable[Any] = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidJSON(
            f"a string holds an unpaired surrogate (\\u{ord(text[e.start]):04x}), "
            "which is not Unicode text"
        ) from None
