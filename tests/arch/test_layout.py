"""Where things live, checked: the import graph has no cycle, every module imports only from its
own layer and the layers below (the layers are docs/architecture.md's block, read from there), and
Go's behaviour is imitated in one place (``contest.golang``), not again beside its users.

Read from the source with ``ast`` (nothing is imported), so a new module is checked the moment
it exists.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import contest

SRC = Path(contest.__file__).resolve().parent
ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in SRC.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, tree: ast.AST) -> Iterator[str]:
    """The contest modules ``name`` imports at run time (function-level imports included;
    ``if TYPE_CHECKING:`` blocks left out, they never run)."""
    is_package = MODULES[name].name == "__init__.py"
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _owner(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                yield full if full in MODULES else _owner(target)


def _owner(module: str) -> str:
    """The nearest module of ours that ``module`` names (itself, or the package holding it)."""
    while module and module not in MODULES:
        module = module.rpartition(".")[0]
    return module


GRAPH: dict[str, set[str]] = {
    name: {m for m in _imports(name, ast.parse(path.read_text())) if m and m != name}
    for name, path in MODULES.items()
}


def _find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_is_read() -> None:
    assert "contest.golang.strconv" in GRAPH["contest.comparison"]
    assert "contest.job.descriptor.model" in GRAPH["contest.job.descriptor.decode"]
    assert len(MODULES) > 100


def test_the_import_graph_has_no_cycle() -> None:
    cycle = _find_cycle()
    assert cycle is None, " -> ".join(cycle or [])


def _layers() -> list[tuple[str, list[str]]]:
    """docs/architecture.md's layers, bottom first: (name, module prefixes)."""
    text = ARCHITECTURE.read_text()
    block = re.search(r"<!-- layers -->\n```text\n(.*?)```", text, re.DOTALL)
    assert block, "docs/architecture.md has no layers block"
    layers: list[tuple[str, list[str]]] = []
    for line in reversed(block.group(1).splitlines()):
        if not line.strip():
            continue
        name, *prefixes = line.split()
        if layers and layers[-1][0] == name:  # a layer written on several lines
            layers[-1][1].extend(prefixes)
        else:
            layers.append((name, prefixes))
    return layers


LAYERS = _layers()


def _layer_of(module: str) -> int:
    """The layer of the longest prefix naming ``module`` (``contest`` itself names only the
    package's ``__init__``)."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "contest" and module.startswith(prefix + "."))
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def test_every_module_has_a_layer() -> None:
    assert len(LAYERS) >= 8
    missing = sorted(m for m in MODULES if _layer_of(m) < 0)
    assert not missing, f"modules in no layer of docs/architecture.md: {missing}"


def test_every_import_goes_down_or_across() -> None:
    upward = []
    for name, deps in GRAPH.items():
        mine = _layer_of(name)
        for dep in deps:
            theirs = _layer_of(dep)
            if theirs > mine:
                upward.append(f"{name} ({LAYERS[mine][0]}) -> {dep} ({LAYERS[theirs][0]})")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def _importers_of(prefix: str) -> dict[str, set[str]]:
    return {
        name: {m for m in deps if m == prefix or m.startswith(prefix + ".")}
        for name, deps in GRAPH.items()
        if not (name == prefix or name.startswith(prefix + "."))
    }


def test_layers_import_downwards() -> None:
    # the client talks HTTP to a server; it shares no code with it
    for name, deps in GRAPH.items():
        if name.startswith("contest.client"):
            assert not {d for d in deps if d.startswith("contest.server")}, name
    # only the server itself and the command that serves import the server
    for name, deps in _importers_of("contest.server").items():
        assert not deps or name == "contest.cli", f"{name} imports {sorted(deps)}"
    # test-only code (fixture steps, the in-memory store) is never imported by production code
    for name, deps in _importers_of("contest.testing").items():
        assert not deps, f"{name} imports {sorted(deps)}"


# --- Go's helpers, once ---------------------------------------------------------------------------

#: what only an imitation of Go writes: its error texts
GO_TEXTS = re.compile(r"strconv\.[A-Z]|json: cannot unmarshal|time: (invalid|missing|unknown)")
#: the names a second copy of a Go helper would get
GO_HELPERS = re.compile(
    r"_?(go_)?(strconv_)?quote|_?(parse_float|parse_int64|atoi|parse_bool|parse_go_bool"
    r"|underscore_ok|parse_duration|format_duration|go_time|parse_ip|marshal|encode_indent)"
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_go_helpers_are_defined_only_in_contest_golang() -> None:
    found = []
    for name, path in MODULES.items():
        if name.startswith("contest.golang"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if GO_HELPERS.fullmatch(node.name):
                    found.append(f"{name}.{node.name}")
    assert not found, f"Go helpers outside contest.golang: {found}"


def test_go_error_texts_are_written_only_in_contest_golang() -> None:
    found = []
    for name, path in MODULES.items():
        if name.startswith("contest.golang"):
            continue
        tree = ast.parse(path.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and GO_TEXTS.search(node.value)
            ):
                found.append(f"{name}:{node.lineno}: {node.value!r}")
    assert not found, "Go's error texts written outside contest.golang:\n" + "\n".join(found)
