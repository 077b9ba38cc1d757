"""Data and functions shared by the template tests.

``data()`` is what Go would see as a ``map[string]interface{}`` decoded from JSON, plus one
declared object standing for ConTest's ``*target.Target``.
"""

from __future__ import annotations

from typing import Any

from contest.templates import parse


class Host:
    """A declared object: only the Go names in ``__template_fields__`` are readable."""

    __template_fields__ = {"ID": "id", "FQDN": "fqdn", "IP": "ip", "Tags": "tags", "M": "method"}
    __template_type__ = "*target.Target"

    def __init__(self, id: str, fqdn: str, ip: str | None = None) -> None:
        self.id = id
        self.fqdn = fqdn
        self.ip = ip
        self.tags = ["a", "b"]
        self.secret = "s3cr3t"

    def method(self) -> str:
        return "called"

    def __str__(self) -> str:
        return f"Host({self.id})"


class Undeclared:
    """An object that declares nothing: no field of it is readable."""

    def __init__(self) -> None:
        self.x = 1

    def m(self) -> int:
        return 2


def data() -> dict[str, Any]:
    return {
        "Str": "hello",
        "Uni": "héllo",
        "Int": 42,
        "Neg": -7,
        "Float": 1.5,
        "Big": 1e6,
        "True": True,
        "False": False,
        "Nil": None,
        "Empty": "",
        "Zero": 0,
        "FZero": 0.0,
        "List": ["a", "b", "c"],
        "Ints": [1, 2, 3],
        "Mixed": [1, None, "s"],
        "Matrix": [[1, 2], [3, 4]],
        "EmptyList": [],
        "Map": {"b": 2, "a": 1, "c": 3},
        "EmptyMap": {},
        "Nested": {"Inner": {"Deep": "x"}},
        "Nest": [{"a": [1, 2]}, {"b": None}],
        "Host": Host("T1", "host.example.com"),
        "NoIP": Host("T2", "two.example.com"),
        "Obj": Undeclared(),
        "Fn": lambda a, b: a + b,
        "Inf": float("inf"),
        "NInf": float("-inf"),
        "NaN": float("nan"),
        "NegZero": -0.0,
        "Cls": Undeclared,
    }


def _fail(*args: Any) -> Any:
    raise ValueError("boom")


def _add(a: Any, b: Any) -> Any:
    return a + b


def _upper(s: str) -> str:
    return s.upper()


FUNCS: dict[str, Any] = {
    "ToUpper": _upper,
    "Add": _add,
    "Fail": _fail,
    "Nothing": lambda: None,
    "Echo": lambda *a: list(a),
    "Jumphost": lambda fqdn: "jump-" + fqdn,
}


def render(text: str, root: Any = None, funcs: dict[str, Any] | None = None) -> str:
    f = FUNCS if funcs is None else funcs
    return parse(text, name="t", funcs=f).execute(root, f)
