"""Go's ``encoding/json``: a document model that keeps what Go's decoder sees, and Go's writers.

Go's JSON-into-struct rules that read this model are in :mod:`contest.golang.unmarshal`.

Decoding a descriptor the way ConTest does needs three things plain ``json.loads`` throws away:

* the **order of keys, duplicates included**: Go assigns fields key by key, so with
  ``{"Runs": 1, "runs": 2}`` the later key wins, although the two are different dict keys;
* the **text of numbers**: Go rejects ``"Runs": 1.0`` and ``1e2`` for an unsigned field and quotes
  the text in its error (``number 1.0``); raw sub-documents (step parameters, plugin parameters)
  are handed to plugins with their numbers as written, not re-rendered by Python (``1.50`` stays
  ``1.50``, a 20-digit id is not rounded);
* a **strict grammar**: no ``NaN``/``Infinity``.

So a document is read into a small tree: :class:`JsonObject` (ordered pairs), ``list``, ``str``,
:class:`JsonNumber` (its text), ``bool`` and ``None``. :func:`dumps` writes it back, compact or
indented the way Go's ``json.MarshalIndent`` does.

YAML is read into the same tree. ConTest's client turns YAML into JSON with Go's ``yaml.v3``,
which follows the YAML 1.2 core schema; PyYAML's ``safe_load`` follows YAML 1.1, where ``on``/``no``
are booleans, ``1:30`` is the integer 90 and ``2024-01-01`` a date. :func:`loads_yaml` uses a loader
with the 1.2 core resolvers so a YAML descriptor means here what it means to ConTest.

Writing plain data the way ConTest's Go server writes it (:func:`encode`, :func:`marshal`,
:func:`encode_indent`), so its clients read the same bytes. Go has two writers in play and they
differ:

* the success envelope goes through ``json.Encoder`` with ``SetEscapeHTML(false)``: compact, the
  text as it is (UTF-8), ``U+2028``/``U+2029`` escaped, and a trailing newline;
* the 400 ``{"Msg"}`` body goes through ``json.Marshal``: the same, but ``<``, ``>`` and ``&`` are
  escaped as ``\\u003c``, ``\\u003e``, ``\\u0026``, and there is no trailing newline.

Python's ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` matches Go for everything
else we write (control characters, ``\\b``/``\\f`` as modern Go writes them, key order = insertion
order, which the status document builds in Go's field order).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TypeAlias

import yaml

__all__ = [
    "JsonNumber",
    "JsonObject",
    "JsonSyntaxError",
    "JsonValue",
    "compact",
    "dumps",
    "encode",
    "encode_indent",
    "from_python",
    "go_float",
    "json_kind",
    "loads_json",
    "loads_yaml",
    "marshal",
    "to_bytes",
    "to_python",
]


class JsonNumber:
    """A JSON number kept as its source text (``12``, ``1.50``, ``-3e+2``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"JsonNumber({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def to_python(self) -> int | float:
        """The number as ``int`` when its text is an integer, else as ``float``."""
        if _INT_RE.fullmatch(self.text):
            return int(self.text)
        return float(self.text)


class JsonObject:
    """A JSON object as its ``(key, value)`` pairs, in document order, duplicates kept."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[str, JsonValue]] = ()) -> None:
        self.pairs: list[tuple[str, JsonValue]] = list(pairs)

    def __iter__(self) -> Iterator[tuple[str, JsonValue]]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonObject) and other.pairs == self.pairs

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"JsonObject({self.pairs!r})"

    def get_folded(self, key: str) -> JsonValue:
        """The value of the last key equal to ``key`` ignoring case, or ``None``.

        This is how Go's decoder finds a struct field for a key, so readers of plugin parameters
        (``TestName``, ``Steps``) can look them up as ConTest does.
        """
        want = fold_key(key)
        found: JsonValue = None
        for k, v in self.pairs:
            if fold_key(k) == want:
                found = v
        return found


JsonValue: TypeAlias = "bool | str | JsonNumber | list[JsonValue] | JsonObject | None"

_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
_SURROGATES = re.compile("[\ud800-\udfff]")


class JsonSyntaxError(ValueError):
    """The text is not a JSON (or YAML) document we can read."""


def fold_key(key: str) -> str:
    """Fold a key the way Go's ``encoding/json`` does to match struct fields ignoring case.

    Go folds rune by rune with simple (one-to-one) case mappings, so ``ß`` stays ``ß`` (Python's
    ``str.casefold`` would make it ``ss``) while the Kelvin sign (U+212A) and the long s (U+017F)
    match ``k`` and ``s``.
    """
    if key.isascii():
        return key.lower()
    out = []
    for ch in key:
        up = ch.upper()
        if len(up) != 1:
            up = ch
        low = up.lower()
        out.append(low if len(low) == 1 else up)
    return "".join(out)


def json_kind(value: JsonValue) -> str:
    """Go's name for the kind of a JSON value in its type errors (``string``, ``number``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, JsonNumber):
        return "number"
    if isinstance(value, JsonObject):
        return "object"
    return "array"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _fix_surrogates(value: JsonValue) -> JsonValue:
    """Replace lone UTF-16 surrogates (from ``\\ud800`` escapes) with U+FFFD, as Go does."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, JsonObject):
        return JsonObject((_SURROGATES.sub("\ufffd", k), _fix_surrogates(v)) for k, v in value)
    if isinstance(value, list):
        return [_fix_surrogates(v) for v in value]
    return value


def _text(data: str | bytes | bytearray) -> str:
    """Text of a document; invalid UTF-8 becomes U+FFFD (as in Go strings); a BOM is skipped."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes | bytearray) else data
    return text[1:] if text.startswith("\ufeff") else text


def loads_json(data: str | bytes | bytearray) -> JsonValue:
    """Parse JSON into the tree model; raise :class:`JsonSyntaxError` with line and column.

    A leading byte-order mark is skipped (Go would refuse it; editors on Windows add it).
    """
    text = _text(data)
    try:
        value: JsonValue = json.loads(
            text,
            object_pairs_hook=JsonObject,
            parse_int=JsonNumber,
            parse_float=JsonNumber,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(
            f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except ValueError as exc:  # NaN, Infinity
        raise JsonSyntaxError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise JsonSyntaxError("invalid JSON: nested too deeply") from None
    if "\\u" in text or _SURROGATES.search(text):
        value = _fix_surrogates(value)
    return value


# --- YAML, as Go's yaml.v3 reads it -------------------------------------------------------------


# libyaml's parser when PyYAML has it: several times faster, and no Python recursion on nesting.
_SafeLoaderBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CoreSchemaLoader(_SafeLoaderBase):  # type: ignore[valid-type,misc]
    """A safe loader resolving plain scalars with the YAML 1.2 core schema (like ``yaml.v3``)."""


_CoreSchemaLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (
        "tag:yaml.org,2002:int",
        r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$",
        list("-+0123456789"),
    ),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
):
    _CoreSchemaLoader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _yaml_error(node: yaml.Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _construct_int(loader: _CoreSchemaLoader, node: yaml.Node) -> JsonValue:
    text = str(loader.construct_scalar(node))
    body = text.lstrip("+-").replace("_", "")  # yaml.v3 drops every underscore first
    sign = -1 if text.startswith("-") else 1
    if body.startswith("0x"):
        value = int(body[2:], 16)
    elif body.startswith("0o"):
        value = int(body[2:], 8)
    elif body.startswith("0b"):
        value = int(body[2:], 2)
    elif len(body) > 1 and body.startswith("0") and re.fullmatch("[0-7]+", body):
        value = int(body, 8)  # yaml.v3 reads a leading zero as octal, like Go's ParseInt(s, 0)
    else:
        try:
            value = int(body, 10)
        except ValueError:
            raise _yaml_error(node, f"cannot read {text!r} as an integer") from None
    value *= sign
    if not -(1 << 63) <= value < (1 << 64):  # yaml.v3 falls back to float64
        return JsonNumber(go_float(float(value)))
    return JsonNumber(str(value))


def _construct_float(loader: _CoreSchemaLoader, node: yaml.Node) -> JsonValue:
    text = str(loader.construct_scalar(node))
    plain = text.replace("_", "")
    if plain.lstrip("+-").lower() in (".inf", ".nan"):
        raise _yaml_error(node, f"json: unsupported value: {text} (JSON has no NaN or infinity)")
    return JsonNumber(go_float(float(plain)))


def _construct_bool(loader: _CoreSchemaLoader, node: yaml.Node) -> JsonValue:
    return str(loader.construct_scalar(node)).lower() == "true"


def _construct_null(loader: _CoreSchemaLoader, node: yaml.Node) -> JsonValue:
    return None


def _construct_str(loader: _CoreSchemaLoader, node: yaml.Node) -> JsonValue:
    return str(loader.construct_scalar(node))


def _construct_seq(loader: _CoreSchemaLoader, node: yaml.Node) -> JsonValue:
    if not isinstance(node, yaml.SequenceNode):
        raise _yaml_error(node, "expected a sequence")
    return [_as_json(loader.construct_object(child, deep=True), child) for child in node.value]


def _construct_map(loader: _CoreSchemaLoader, node: yaml.Node) -> JsonValue:
    """Build an object; like ``yaml.v3``, refuse duplicate keys and keys that are not strings."""
    if not isinstance(node, yaml.MappingNode):
        raise _yaml_error(node, "expected a mapping")
    seen: dict[str, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, str):
            if key in seen:
                line = seen[key].start_mark.line + 1
                raise _yaml_error(key_node, f"duplicate mapping key {key!r} (first at line {line})")
            seen[key] = key_node
    loader.flatten_mapping(node)  # merge keys (<<) first, the node's own keys override them
    values: dict[str, JsonValue] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            try:
                shown = dumps(key)
            except TypeError:
                shown = repr(key)
            raise _yaml_error(
                key_node,
                f"mapping key {shown} is not a string "
                "(json: unsupported type: map[interface {}]interface {})",
            )
        values[key] = _as_json(loader.construct_object(value_node, deep=True), value_node)
    return JsonObject(values.items())


def _as_json(value: Any, node: yaml.Node) -> JsonValue:
    """Turn what an explicitly tagged node produced (``!!binary``, ``!!timestamp``) into JSON."""
    if value is None or isinstance(value, bool | str | JsonNumber | list | JsonObject):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "isoformat"):  # an explicit !!timestamp
        return str(value.isoformat())
    raise _yaml_error(node, f"unsupported YAML value {value!r} in a JSON document")


_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:null", _construct_null)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


#: Alias uses (``*name``) a document may have; real descriptors reuse a step list a few times.
MAX_YAML_ALIASES = 10_000
#: Nodes aliases may add once expanded: a "billion laughs" document of a few hundred bytes
#: expands to 10^9 nodes, gigabytes of memory; this is tens of megabytes at most.
MAX_YAML_ALIAS_EXPANSION = 200_000


def _check_aliases(root: yaml.Node) -> None:
    """Refuse an alias bomb before anything is built: count the alias uses and the nodes they
    add once expanded, on the composed node graph (where an alias is the same node again), in
    time proportional to the document. Also refuse a recursive alias (an anchor used inside
    itself), which JSON cannot hold."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    uses = 0

    def size(node: yaml.Node) -> int:
        nonlocal uses
        key = id(node)
        if key in sizes:
            uses += 1
            if uses > MAX_YAML_ALIASES:
                raise _yaml_error(node, f"more than {MAX_YAML_ALIASES} aliases")
            return sizes[key]
        if key in open_nodes:
            raise _yaml_error(node, "recursive alias (an anchor used inside itself)")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    expanded = size(root)
    added = expanded - len(sizes)
    if added > MAX_YAML_ALIAS_EXPANSION:
        raise _yaml_error(
            root,
            f"aliases expand the document by {added} nodes, more than the "
            f"{MAX_YAML_ALIAS_EXPANSION} allowed",
        )


def _load_yaml(text: str) -> Any:
    loader = _CoreSchemaLoader(text)  # a SafeLoader subclass
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def loads_yaml(data: str | bytes | bytearray) -> JsonValue:
    """Parse one YAML document into the tree model (YAML 1.2 core schema, as ConTest's client).

    An empty document is ``None``. Raises :class:`JsonSyntaxError` with line and column, also
    for an alias bomb (see :func:`_check_aliases`).
    """
    try:
        value: Any = _load_yaml(_text(data))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "error"
        raise JsonSyntaxError(f"invalid YAML: {problem}{where}") from None
    except yaml.YAMLError as exc:
        raise JsonSyntaxError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise JsonSyntaxError("invalid YAML: nested too deeply") from None
    if value is not None and not isinstance(value, bool | str | JsonNumber | list | JsonObject):
        raise JsonSyntaxError(f"invalid YAML: unsupported document value {value!r}")
    return _fix_surrogates(value)


# --- writing ----------------------------------------------------------------------------------


def go_float(value: float) -> str:
    """Format a float as Go's ``encoding/json`` does (``100``, ``1.5``, ``1e+21``, ``1e-7``).

    Numbers that come from YAML or from Python objects are written this way so that a step sees the
    same parameter text as under ConTest (Python would write ``100.0`` and ``1e-07``).
    """
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"json: unsupported value: {value!r}")
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    dec = Decimal(repr(mag)).normalize()
    if mag < 1e-6 or mag >= 1e21:
        _, digits_t, exp = dec.as_tuple()
        digits = "".join(map(str, digits_t))
        assert isinstance(exp, int)
        exponent = exp + len(digits) - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        if exponent < 0:
            exp_text = f"-{-exponent}" if exponent > -10 else f"-{-exponent:02d}"
        else:
            exp_text = f"+{exponent:02d}"
        return f"{sign}{mantissa}e{exp_text}"
    return sign + format(dec, "f")


def _dump(value: JsonValue, indent: str | None, level: int, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, JsonNumber):
        out.append(value.text)
    elif isinstance(value, JsonObject):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for i, (key, item) in enumerate(value):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(": " if indent is not None else ":")
            _dump(item, indent, level + 1, out)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append("}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            _dump(item, indent, level + 1, out)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append("]")
    else:
        raise TypeError(f"not a JSON tree value: {value!r}")


def _compact_tree(value: Any, out: list[str]) -> None:
    """:func:`_dump` without indentation, written for speed (a 100,000-target descriptor's
    target list is dumped at each submission): type tests by identity, strings quoted by the C
    escaper ``json.dumps(s, ensure_ascii=False)`` itself uses."""
    kind = type(value)
    if kind is str:
        out.append(_quote(value))
    elif kind is JsonObject:
        pairs = value.pairs
        if not pairs:
            out.append("{}")
            return
        sep = "{"
        for key, item in pairs:
            out.append(sep)
            out.append(_quote(key))
            out.append(":")
            _compact_tree(item, out)
            sep = ","
        out.append("}")
    elif kind is list:
        if not value:
            out.append("[]")
            return
        sep = "["
        for item in value:
            out.append(sep)
            _compact_tree(item, out)
            sep = ","
        out.append("]")
    elif kind is JsonNumber:
        out.append(value.text)
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    else:
        _dump(value, None, 0, out)  # subclasses: the general writer decides


_quote = json.encoder.encode_basestring  # what json.dumps(s, ensure_ascii=False) returns


def dumps(value: JsonValue, indent: int | None = None) -> str:
    """Write a tree as JSON: compact (no spaces) or indented like Go's ``json.MarshalIndent``."""
    out: list[str] = []
    if indent is None:
        _compact_tree(value, out)
    else:
        _dump(value, " " * indent, 0, out)
    return "".join(out)


def from_python(obj: Any) -> JsonValue:
    """Turn plain Python data (``json.loads`` or ``yaml.safe_load`` output) into a tree.

    Trees pass through unchanged, so callers may hand either. Floats are written as Go writes them.
    """
    if obj is None or isinstance(obj, bool | str | JsonNumber):
        return obj
    if isinstance(obj, int):
        return JsonNumber(str(obj))
    if isinstance(obj, float):
        return JsonNumber(go_float(obj))
    if isinstance(obj, JsonObject):
        return JsonObject((k, from_python(v)) for k, v in obj)
    if isinstance(obj, Mapping):
        pairs = []
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be strings, got {k!r}")
            pairs.append((k, from_python(v)))
        return JsonObject(pairs)
    if isinstance(obj, list | tuple):
        return [from_python(v) for v in obj]
    raise TypeError(f"cannot represent {type(obj).__name__} in JSON: {obj!r}")


def to_python(value: JsonValue) -> Any:
    """Turn a tree into plain Python data; with duplicate keys the last one wins, as in Go."""
    if isinstance(value, JsonNumber):
        return value.to_python()
    if isinstance(value, JsonObject):
        return {k: to_python(v) for k, v in value}
    if isinstance(value, list):
        return [to_python(v) for v in value]
    return value


# --- Go's writers for plain data -----------------------------------------------------------------

_LINE_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029"})
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def compact(value: Any) -> str:
    """The text ``json.Encoder`` with HTML escaping off writes for ``value``, without the
    newline (:func:`encode` is its bytes with it): writers that assemble a big document from
    parts (a run's status) write each part with it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_LINE_SEPARATORS)


_compact = compact


def to_bytes(text: str) -> bytes:
    """Text written by :func:`compact` as the bytes Go sends (UTF-8; a lone surrogate, which
    Go cannot hold in a string, becomes ``?``)."""
    return text.encode("utf-8", "replace")


def encode(value: Any) -> bytes:
    """``json.Encoder`` with HTML escaping off: compact, newline-terminated."""
    return to_bytes(_compact(value) + "\n")


def marshal(value: Any) -> bytes:
    """``json.Marshal``: compact, HTML-escaped, no trailing newline."""
    return _compact(value).translate(_HTML).encode("utf-8", "replace")


def encode_indent(value: Any, indent: str = " ") -> str:
    """``json.Encoder`` with ``SetIndent("", indent)`` and HTML escaping off (what contestcli
    prints): Go puts no space before a colon, one after, and ends with a newline."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    return text.translate(_LINE_SEPARATORS) + "\n"
