"""Reading plugin parameters the way ConTest's plugins read them: Go's ``json.Unmarshal``.

Target managers, fetchers and reporters get their parameters as a JSON sub-document of the job
descriptor, and ConTest's plugins decode it into a Go struct. Users' descriptors rely on what that
means, so :class:`GoStruct` applies the same rules:

* a key matches a field ignoring case (``fileuri`` sets ``FileURI``); keys apply in document order,
  so a later spelling of a field wins; unknown keys are ignored;
* ``null`` leaves a string, number or bool field as it was and empties a list;
* ``null`` (or no parameters at all) for the whole document gives every field its zero value;
* a value of the wrong type fails with Go's words, prefixed with where it is:
  ``MinNumberDevices: json: cannot unmarshal string into Go struct field
  AcquireParameters.MinNumberDevices of type uint32``.

Parameters may arrive as plain Python data (``json.loads`` output, what the job builder hands
over), as the order-keeping tree of :mod:`contest.golang.json`, or as raw JSON text (what
the descriptor stores); ``None`` is JSON ``null``. A missing parameters key is treated like
``null``: ConTest fails it with "unexpected end of JSON input", which helps nobody.

The job descriptor's decoder (:mod:`contest.job.descriptor.decode`) applies the same rules and
shares the Go wording below (:func:`type_error_text`, :func:`value_kind`, :func:`uint_of`); it
collects every error instead of stopping at the first.
"""

from __future__ import annotations

import re
from typing import Any, Final

from contest.errors import ParameterError
from contest.golang.json import (
    JsonNumber,
    JsonObject,
    JsonSyntaxError,
    JsonValue,
    fold_key,
    from_python,
    json_kind,
    loads_json,
)

__all__ = [
    "GoStruct",
    "to_tree",
    "type_error_text",
    "uint_of",
    "value_kind",
    "where",
]


def to_tree(value: Any) -> JsonValue:
    """Parameters in any accepted form as a JSON tree; raw text is parsed (or ParameterError)."""
    if isinstance(value, str | bytes | bytearray):
        try:
            return loads_json(value)
        except JsonSyntaxError as exc:
            raise ParameterError(f"invalid JSON parameters: {exc}") from None
    try:
        return from_python(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"parameters are not JSON: {exc}") from None


_UINT_RE: Final = re.compile(r"[0-9]+")


def value_kind(value: JsonValue) -> str:
    """A value as Go's type errors name it: ``number 1.0`` (with its text), ``string``, ..."""
    if isinstance(value, JsonNumber):
        return f"number {value.text}"
    return json_kind(value)


def type_error_text(what: str, gotype: str, field: str | None = None) -> str:
    """Go's ``*json.UnmarshalTypeError`` text; ``field`` is the struct field chain
    (``Descriptor.Runs``), ``None`` for a value that is not inside a struct."""
    into = f"Go struct field {field}" if field is not None else "Go value"
    return f"json: cannot unmarshal {what} into {into} of type {gotype}"


def uint_of(value: JsonNumber, bits: int) -> int | None:
    """The number as Go reads it into a ``uint<bits>``: digits only (``-1``, ``1.0`` and ``1e2``
    are type errors) and below ``2**bits``; ``None`` when Go would refuse it."""
    text = value.text
    if _UINT_RE.fullmatch(text) and int(text) < (1 << bits):
        return int(text)
    return None


def where(path: str, message: str) -> str:
    """``path: message``, or the bare message at the top of the document."""
    return f"{path}: {message}" if path else message


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class GoStruct:
    """One JSON object read as a Go struct of type ``gotype`` (e.g. ``csv.AcquireParameters``).

    ``path`` is where the object sits in the parameters (``Targets[2]``), used to prefix messages;
    ``chain`` is the Go field chain for type errors (``AcquireParameters.Targets``), which is how
    Go names a nested field: ``Go struct field AcquireParameters.Targets.ID of type string``.
    """

    def __init__(
        self,
        value: Any,
        gotype: str,
        *,
        path: str = "",
        chain: str | None = None,
        is_tree: bool = False,
    ) -> None:
        # raw text is parsed only at the top: inside a tree, a str is a JSON string
        tree: JsonValue = value if is_tree else to_tree(value)
        self.gotype = gotype
        self.path = path
        self.chain = chain if chain is not None else gotype.rsplit(".", 1)[-1]
        if tree is None:
            self.pairs: list[tuple[str, JsonValue]] = []
        elif isinstance(tree, JsonObject):
            self.pairs = list(tree)
        else:
            raise ParameterError(where(path, type_error_text(json_kind(tree), gotype, chain)))

    def nested(self, value: JsonValue, gotype: str, name: str, path: str) -> GoStruct:
        """The struct held by field ``name`` (or by one element of it), found at ``path``."""
        return GoStruct(value, gotype, path=path, chain=f"{self.chain}.{name}", is_tree=True)

    # --- lookup --------------------------------------------------------------------------------

    def values(self, name: str) -> list[JsonValue]:
        """Every value given for field ``name``, in document order (any spelling of the key)."""
        want = fold_key(name)
        return [v for k, v in self.pairs if fold_key(k) == want]

    def has(self, name: str) -> bool:
        return bool(self.values(name))

    def type_error(self, name: str, value: JsonValue, gotype: str) -> ParameterError:
        return ParameterError(
            where(
                _join(self.path, name),
                type_error_text(value_kind(value), gotype, f"{self.chain}.{name}"),
            )
        )

    # --- scalar fields -------------------------------------------------------------------------

    def string(self, name: str) -> str:
        result = ""
        for v in self.values(name):
            if v is None:
                continue
            if not isinstance(v, str):
                raise self.type_error(name, v, "string")
            result = v
        return result

    def optional_string(self, name: str) -> str | None:
        """A string field that may be absent (Go's ``*T``): ``None`` when absent or ``null``."""
        result: str | None = None
        for v in self.values(name):
            if v is None:
                result = None
                continue
            if not isinstance(v, str):
                raise self.type_error(name, v, "string")
            result = v
        return result

    def uint(self, name: str, bits: int = 32) -> int:
        gotype = f"uint{bits}"
        result = 0
        for v in self.values(name):
            if v is None:
                continue
            if not isinstance(v, JsonNumber):
                raise self.type_error(name, v, gotype)
            got = uint_of(v, bits)
            if got is None:
                raise self.type_error(name, v, gotype)
            result = got
        return result

    def boolean(self, name: str) -> bool:
        result = False
        for v in self.values(name):
            if v is None:
                continue
            if not isinstance(v, bool):
                raise self.type_error(name, v, "bool")
            result = v
        return result

    # --- containers ----------------------------------------------------------------------------

    def array(self, name: str, gotype: str) -> list[JsonValue]:
        """A list field: ``null`` empties it, anything but an array is a type error."""
        result: list[JsonValue] = []
        for v in self.values(name):
            if v is None:
                result = []
                continue
            if not isinstance(v, list):
                raise self.type_error(name, v, gotype)
            result = list(v)
        return result

    def strings(self, name: str) -> list[str]:
        """A ``[]string`` field; a ``null`` element is ``""``, as Go leaves it."""
        out: list[str] = []
        for i, item in enumerate(self.array(name, "[]string")):
            if item is None:
                out.append("")
            elif isinstance(item, str):
                out.append(item)
            else:
                raise ParameterError(
                    where(
                        f"{_join(self.path, name)}[{i}]",
                        type_error_text(json_kind(item), "string", f"{self.chain}.{name}"),
                    )
                )
        return out

    def raw(self, name: str) -> JsonValue:
        """A ``json.RawMessage`` field: the last value given, ``null`` included."""
        found = self.values(name)
        return found[-1] if found else None
