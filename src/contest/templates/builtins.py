"""Go's template built-in functions, on Python values, with Go's results and error texts.

The evaluator decides *when* a built-in runs (argument count, lazy ``and``/``or``); this module
decides what it returns.  Errors are :class:`GoFuncError` carrying Go's message; the evaluator
turns them into ``error calling NAME: ...`` at the right position.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote_plus

from contest.golang.strconv import is_print

from .gofmt import format_verb
from .printf import sprint
from .values import (
    MISSING,
    GoFuncError,
    Kind,
    from_go_bytes,
    go_len,
    go_type_name,
    is_go_function,
    kind_of,
    to_go_bytes,
    truth,
)

_BASIC: Final = frozenset({Kind.BOOL, Kind.INT, Kind.FLOAT, Kind.COMPLEX, Kind.STRING})
_REFLECT_KIND: Final = {
    Kind.LIST: "slice",
    Kind.BYTES: "slice",
    Kind.MAP: "map",
    Kind.OBJECT: "ptr",
    Kind.OTHER: "ptr",
    Kind.FUNC: "func",
    Kind.INVALID: "invalid",
}


def _valid(v: object) -> bool:
    return v is not None and v is not MISSING


# --------------------------------------------------------------------------- comparisons


def go_eq(a: Any, others: Sequence[Any]) -> bool:
    """``eq a b c...``: a equals any of the others; Go's rules on kinds."""
    if not others:
        raise GoFuncError("missing argument for comparison")
    ka = kind_of(a)
    ba = ka if ka in _BASIC else Kind.INVALID
    for b in others:
        kb = kind_of(b)
        bb = kb if kb in _BASIC else Kind.INVALID
        if ba != bb:
            if _valid(a) and _valid(b):
                raise GoFuncError("incompatible types for comparison")
            continue
        if ba is not Kind.INVALID:
            if a == b:
                return True
            continue
        ra, rb = _REFLECT_KIND[ka], _REFLECT_KIND[kb]
        if ra != rb and ra != "invalid" and rb != "invalid":
            raise GoFuncError(
                f"non-comparable types {format_verb('s', a)}: {go_type_name(a)}, "
                f"{go_type_name(b)}: {format_verb('v', b)}"
            )
        if not _valid(a) or not _valid(b):
            if _valid(a) == _valid(b):
                return True
            continue
        if rb in ("slice", "map", "func"):
            raise GoFuncError(f"non-comparable type {format_verb('s', b)}: {go_type_name(b)}")
        if a is b:
            return True
        if kb is Kind.OTHER:
            with contextlib.suppress(Exception):  # a failing __eq__ means "not equal"
                if a == b:
                    return True
    return False


def _basic_kind(v: Any) -> Kind:
    k = kind_of(v)
    if k not in _BASIC:
        raise GoFuncError("invalid type for comparison")
    return k


def go_lt(a: Any, b: Any) -> bool:
    ka = _basic_kind(a)
    kb = _basic_kind(b)
    if ka != kb:
        raise GoFuncError("incompatible types for comparison")
    if ka is Kind.BOOL or ka is Kind.COMPLEX:
        raise GoFuncError("invalid type for comparison")
    return bool(a < b)


def go_le(a: Any, b: Any) -> bool:
    return go_lt(a, b) or go_eq(a, (b,))


def go_gt(a: Any, b: Any) -> bool:
    return not go_le(a, b)


def go_ge(a: Any, b: Any) -> bool:
    return not go_lt(a, b)


def go_ne(a: Any, b: Any) -> bool:
    return not go_eq(a, (b,))


# --------------------------------------------------------------------------- len, index, slice


def go_length(v: Any) -> int:
    if v is None:
        raise GoFuncError("len of nil pointer")
    if v is MISSING:
        raise GoFuncError("reflect: call of reflect.Value.Type on zero Value")
    k = kind_of(v)
    if k is Kind.STRING:
        return go_len(v)
    if k in (Kind.LIST, Kind.MAP, Kind.BYTES):
        return len(v)
    raise GoFuncError(f"len of type {go_type_name(v)}")


def _index_arg(index: Any, cap: int) -> int:
    k = kind_of(index)
    if k is Kind.INT:
        x = int(index)
    elif not _valid(index):
        raise GoFuncError("cannot index slice/array with nil")
    else:
        raise GoFuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if x < 0 or x > cap:
        raise GoFuncError(f"index out of range: {x}")
    return x


def _map_key(index: Any, m: Mapping[Any, Any]) -> Any:
    if not _valid(index):
        raise GoFuncError("value is nil; should be of type string")
    if isinstance(index, str):
        return index
    if all(isinstance(k, str) for k in m):
        raise GoFuncError(f"value has type {go_type_name(index)}; should be string")
    return index


def go_index(item: Any, indexes: Sequence[Any]) -> Any:
    """``index x 1 2``: x[1][2]; a missing map key gives the zero value (nil)."""
    if not _valid(item):
        raise GoFuncError("index of untyped nil")
    for index in indexes:
        if item is None or item is MISSING:
            raise GoFuncError("index of nil pointer")
        k = kind_of(item)
        if k is Kind.STRING or k is Kind.BYTES:
            data = to_go_bytes(item) if k is Kind.STRING else bytes(item)
            x = _index_arg(index, len(data))
            if x >= len(data):
                raise GoFuncError(f"index out of range: {x}")
            item = data[x]  # a byte, as Go's uint8
        elif k is Kind.LIST:
            x = _index_arg(index, len(item))
            if x >= len(item):
                raise GoFuncError(f"index out of range: {x}")
            item = item[x]
        elif k is Kind.MAP:
            key = _map_key(index, item)
            try:
                item = item.get(key)
            except TypeError as exc:
                raise GoFuncError(f"value has type {go_type_name(index)}: {exc}") from None
        else:
            raise GoFuncError(f"can't index item of type {go_type_name(item)}")
    return item


def go_slice(item: Any, indexes: Sequence[Any]) -> Any:
    """``slice x 1 2``: x[1:2]; strings are sliced by bytes, as in Go."""
    if not _valid(item):
        raise GoFuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise GoFuncError(f"too many slice indexes: {len(indexes)}")
    k = kind_of(item)
    if k is Kind.STRING:
        if len(indexes) == 3:
            raise GoFuncError("cannot 3-index slice a string")
        cap = go_len(item)
    elif k is Kind.LIST or k is Kind.BYTES:
        cap = len(item)
    else:
        raise GoFuncError(f"can't slice item of type {go_type_name(item)}")
    idx = [0, cap, 0]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, cap)
    if idx[0] > idx[1]:
        raise GoFuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise GoFuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if k is Kind.STRING and not item.isascii():
        return from_go_bytes(to_go_bytes(item)[idx[0] : idx[1]])
    return item[idx[0] : idx[1]]


def go_not(v: Any) -> bool:
    return not truth(v)


# --------------------------------------------------------------------------- escapers


def eval_args(args: Sequence[Any]) -> str:
    """Go's ``evalArgs``: one string as is, else ``Sprint`` with nil shown as ``<no value>``."""
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    return sprint(["<no value>" if not _valid(a) else a for a in args])


_HTML: Final = str.maketrans(
    {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
)


def html_escape(s: str) -> str:
    """Go's ``template.HTMLEscapeString``."""
    return s.translate(_HTML)


_JS_ASCII: Final = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def js_escape(s: str) -> str:
    """Go's ``template.JSEscapeString``."""
    out: list[str] = []
    for ch in s:
        cp = ord(ch)
        if cp < 0x80:
            esc = _JS_ASCII.get(ch)
            if esc is not None:
                out.append(esc)
            elif cp < 0x20:
                out.append(f"\\u00{cp:02X}")
            else:
                out.append(ch)
        elif 0xDC80 <= cp <= 0xDCFF or is_print(cp):
            out.append(ch)  # printable, or a non-UTF-8 byte that Go copies through
        else:
            out.append(f"\\u{cp:04X}")
    return "".join(out)


def url_query_escape(s: str) -> str:
    """Go's ``url.QueryEscape``."""
    return quote_plus(to_go_bytes(s), safe="")


# --------------------------------------------------------------------------- calls


def arity_message(
    name: str, fn: Callable[..., Any], nargs: int, *, for_call: bool = False
) -> str | None:
    """Go's "wrong number of args" text if ``fn`` cannot take ``nargs`` positional arguments.

    ``for_call``: the wording of the ``call`` built-in, which Go words "got N want M".
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    with contextlib.suppress(TypeError):
        sig.bind(*([None] * nargs))
        return None
    params = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = sum(1 for p in params if p.default is p.empty)
    variadic = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    at_least = "at least " if variadic or required != len(params) else ""
    if for_call:
        return f"wrong number of args for {name}: got {nargs} want {at_least}{required}"
    return f"wrong number of args for {name}: want {at_least}{required} got {nargs}"


def error_text(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


def go_call(name: str, fn: Any, args: Sequence[Any]) -> Any:
    """``call fn args...``: only plain functions may be called, never methods or classes."""
    if not _valid(fn):
        raise GoFuncError("call of nil")
    if not is_go_function(fn):
        raise GoFuncError(f"non-function {name} of type {go_type_name(fn)}")
    argv = [None if a is MISSING else a for a in args]
    try:
        return fn(*argv)
    except TypeError as exc:
        msg = arity_message(name, fn, len(argv), for_call=True)
        raise GoFuncError(msg if msg is not None else error_text(exc)) from exc
    except Exception as exc:
        raise GoFuncError(error_text(exc)) from exc
