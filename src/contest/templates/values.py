"""The Go value model the interpreter works with, on plain Python values.

Go's text/template sees typed values through reflection; we see Python objects.  This module
decides, in one place, which Go kind a Python value stands for, which Go type name an error
message shows for it, whether it is "true" in an ``if``, and how a field is read from it.

Two kinds of "nothing" exist, as in Go:

* ``None`` is a nil value (a nil ``interface{}`` in a map or slice, a nil field of a struct);
* ``MISSING`` is Go's *invalid* ``reflect.Value``: a missing map key, or a nil root.  It prints
  as ``<no value>``.

Field access is the sandbox boundary: a dict (Go's ``map[string]interface{}``) is looked up by
key, an object is readable only through the Go-name -> attribute map its class declares in
``__template_fields__``, and nothing else is readable at all.  No other attribute, method or
dunder of any object is ever touched.
"""

from __future__ import annotations

import enum
import functools
import types
from collections.abc import Mapping
from typing import Any, Final


class _Missing:
    """Go's invalid reflect.Value: what a missing map key or a nil root evaluates to."""

    __slots__ = ()
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class GoFuncError(Exception):
    """An error returned by a built-in function; the evaluator adds "error calling NAME: "."""


class Kind(enum.IntEnum):
    """The Go kinds a Python value can stand for."""

    INVALID = 0  # MISSING, or None once an interface is looked through
    BOOL = 1
    INT = 2
    FLOAT = 3
    COMPLEX = 4
    STRING = 5
    BYTES = 6  # []byte
    LIST = 7  # []interface{}
    MAP = 8  # map[string]interface{}
    OBJECT = 9  # a declared object: a pointer to a struct in Go
    FUNC = 10
    OTHER = 11  # any other object: treated as an opaque fmt.Stringer


_KIND_BY_TYPE: Final[dict[type, Kind]] = {
    str: Kind.STRING,
    bool: Kind.BOOL,
    int: Kind.INT,
    float: Kind.FLOAT,
    complex: Kind.COMPLEX,
    list: Kind.LIST,
    tuple: Kind.LIST,
    dict: Kind.MAP,
    bytes: Kind.BYTES,
    bytearray: Kind.BYTES,
    type(None): Kind.INVALID,
    _Missing: Kind.INVALID,
}


def kind_of(v: object) -> Kind:
    """The Go kind ``v`` stands for (exact types first, then subclasses)."""
    k = _KIND_BY_TYPE.get(type(v))
    if k is not None:
        return k
    if isinstance(v, bool):
        return Kind.BOOL
    if isinstance(v, int):
        return Kind.INT
    if isinstance(v, float):
        return Kind.FLOAT
    if isinstance(v, complex):
        return Kind.COMPLEX
    if isinstance(v, str):
        return Kind.STRING
    if isinstance(v, (bytes, bytearray)):
        return Kind.BYTES
    if template_fields(v) is not None:
        return Kind.OBJECT  # an explicit declaration wins over the object's structure
    if isinstance(v, (list, tuple)):
        return Kind.LIST
    if isinstance(v, Mapping):
        return Kind.MAP
    if callable(v) and not isinstance(v, type):
        return Kind.FUNC
    return Kind.OTHER


def template_fields(v: object) -> Mapping[str, str] | None:
    """The Go-name -> attribute map declared by ``v``'s class, if any.

    Read from the class, never from the instance, so an instance cannot widen its own sandbox.
    """
    fields = getattr(type(v), "__template_fields__", None)
    if fields is None:
        return None
    return fields if type(fields) is dict or isinstance(fields, Mapping) else None


def object_type_name(v: object) -> str:
    """Go's type name for a declared object: ``__template_type__``, else ``*module.Class``."""
    cls = type(v)
    name = getattr(cls, "__template_type__", None)
    if isinstance(name, str):
        return name
    module = (cls.__module__ or "").rsplit(".", 1)[-1]
    return f"*{module}.{cls.__qualname__}" if module else f"*{cls.__qualname__}"


def go_type_name(v: object) -> str:
    """The Go type ``v`` stands for, as fmt's ``%T`` and error messages print it."""
    k = kind_of(v)
    if k is Kind.INVALID:
        return "<nil>"
    if k is Kind.MAP:
        assert isinstance(v, Mapping)
        if all(isinstance(key, str) for key in v):
            return "map[string]interface {}"
        return "map[interface {}]interface {}"
    if k is Kind.OBJECT:
        return object_type_name(v)
    if k is Kind.OTHER:
        return type(v).__qualname__
    return _TYPE_NAMES[k]


_TYPE_NAMES: Final[dict[Kind, str]] = {
    Kind.BOOL: "bool",
    Kind.INT: "int",
    Kind.FLOAT: "float64",
    Kind.COMPLEX: "complex128",
    Kind.STRING: "string",
    Kind.BYTES: "[]uint8",
    Kind.LIST: "[]interface {}",
    Kind.FUNC: "func(...) interface {}",
}


def truth(v: object) -> bool:
    """Go's ``isTrue``: zero values (and nil, and missing) are false; structs are true."""
    t = type(v)
    if t is str or t is bool or t is int or t is list or t is dict or t is float:
        return bool(v)
    if v is None or v is MISSING:
        return False
    k = kind_of(v)
    if k in (Kind.STRING, Kind.BYTES, Kind.LIST, Kind.MAP):
        return len(v) > 0  # type: ignore[arg-type]
    if k in (Kind.BOOL, Kind.INT, Kind.FLOAT, Kind.COMPLEX):
        return v != 0
    return True


def is_go_function(v: object) -> bool:
    """Whether ``call`` may call ``v``: plain functions only, never bound methods or classes."""
    if isinstance(v, (types.FunctionType, functools.partial)):
        return True
    if isinstance(v, types.BuiltinFunctionType):
        owner = v.__self__
        return owner is None or isinstance(owner, types.ModuleType)
    return False


def is_bound_method(v: object) -> bool:
    """A method bound to an object (Python or builtin), which a template may never call."""
    if isinstance(v, types.MethodType):
        return True
    if isinstance(v, types.BuiltinMethodType):
        owner = v.__self__
        return owner is not None and not isinstance(owner, types.ModuleType)
    return False


def to_go_bytes(s: str) -> bytes:
    """The bytes of a Go string: non-UTF-8 bytes are kept as ``surrogateescape`` characters."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def from_go_bytes(b: bytes) -> str:
    """The inverse of :func:`to_go_bytes`."""
    return b.decode("utf-8", "surrogateescape")


def go_len(s: str) -> int:
    """``len(s)`` of a Go string: its length in bytes."""
    return len(s) if s.isascii() else len(to_go_bytes(s))


class FieldError(Exception):
    """A field could not be read; the evaluator adds the position."""


def get_field(recv: object, name: str, has_args: bool) -> Any:
    """Go's ``evalField`` on one receiver, within the sandbox.

    Returns ``MISSING`` for a missing map key or a missing receiver, like Go, and ``None`` for a
    nil value.  Raises :class:`FieldError` with Go's message otherwise.  Checks run cheapest
    first (a plain dict, then a declared class), as this is on every ``.Field`` of every run.
    """
    t = type(recv)
    if t is dict:
        if has_args:
            raise FieldError(f"{name} is not a method but has arguments")
        return recv.get(name, MISSING)  # type: ignore[attr-defined]
    fields = getattr(t, "__template_fields__", None)
    if fields is not None and (type(fields) is dict or isinstance(fields, Mapping)):
        attr = fields.get(name)
        if type(attr) is str:
            if has_args:
                raise FieldError(f"{name} has arguments but cannot be invoked as function")
            try:
                value = getattr(recv, attr)
            except Exception as exc:  # a failing property: report it, never crash the caller
                raise FieldError(f"error reading field {name}: {exc}") from exc
            if is_bound_method(value):
                raise FieldError(
                    f"{name} is a method of type {go_type_name(recv)}: "
                    "calling methods is not supported"
                )
            return value
        raise FieldError(f"can't evaluate field {name} in type {go_type_name(recv)}")
    if recv is MISSING:
        return MISSING
    if recv is None:
        raise FieldError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(recv, Mapping):
        if has_args:
            raise FieldError(f"{name} is not a method but has arguments")
        try:
            return recv.get(name, MISSING)
        except TypeError:  # an odd mapping: treat as a missing key
            return MISSING
    raise FieldError(f"can't evaluate field {name} in type {go_type_name(recv)}")
