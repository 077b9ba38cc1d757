"""The descriptor ``contestcli start`` sends: the file re-written as ConTest's client writes it.

ConTest's client does not send the file verbatim: it reads JSON (or YAML with ``-Y``) into a generic
map and writes it back with ``json.MarshalIndent(v, "", "    ")``: keys sorted at every level,
four-space indent, no trailing newline, ``<``, ``>`` and ``&`` escaped as ``\\u003c``...
(``cmds/clients/contestcli/cli/verbs.go``). We do the same, so a server (ours or ConTest's) receives
what ConTest's client would send, and a YAML file reaches a ConTest server as JSON. One difference:
an integer is kept exactly (Go turns every JSON number into a float64, which rounds integers above
2^53).
"""

from __future__ import annotations

import json
from typing import Any

from contest.golang.json import (
    JsonNumber,
    JsonObject,
    JsonSyntaxError,
    JsonValue,
    go_float,
    loads_json,
    loads_yaml,
)

_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


class DescriptorFormatError(ValueError):
    """The file is not a JSON (or YAML) object; the message is ConTest's client's."""


def _number(n: JsonNumber) -> str:
    value = n.to_python()
    if isinstance(value, int):
        return str(value)
    return go_float(value)


def _go_value(value: JsonValue) -> Any:
    """The tree as Go's ``map[string]interface{}`` sees it: the last duplicate key wins."""
    if isinstance(value, JsonObject):
        out: dict[str, Any] = {}
        for k, v in value:
            out[k] = _go_value(v)
        return out
    if isinstance(value, list):
        return [_go_value(v) for v in value]
    return value


def _dump(value: Any, level: int, out: list[str]) -> None:
    pad = "    "
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for i, key in enumerate(sorted(value)):
            out.append(("," if i else "") + "\n" + pad * (level + 1))
            out.append(_string(key) + ": ")
            _dump(value[key], level + 1, out)
        out.append("\n" + pad * level + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            out.append(("," if i else "") + "\n" + pad * (level + 1))
            _dump(item, level + 1, out)
        out.append("\n" + pad * level + "]")
    elif isinstance(value, JsonNumber):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    else:
        out.append("null")


def _string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).translate(_ESCAPES)


def to_request_json(data: bytes | str, *, yaml: bool = False) -> str:
    """Parse a descriptor file and write it as ConTest's client sends it.

    Raises :class:`DescriptorFormatError` (``failed to parse JSON job descriptor: ...``).
    """
    kind = "YAML" if yaml else "JSON"
    try:
        tree = loads_yaml(data) if yaml else loads_json(data)
    except JsonSyntaxError as exc:
        raise DescriptorFormatError(f"failed to parse {kind} job descriptor: {exc}") from None
    if tree is None and yaml:
        tree = JsonObject()
    if not isinstance(tree, JsonObject):
        raise DescriptorFormatError(
            f"failed to parse {kind} job descriptor: the document is not an object "
            "(a map of JobName, TestDescriptors, ...)"
        )
    out: list[str] = []
    _dump(_go_value(tree), 0, out)
    return "".join(out)
