"""Go ``text/template`` for step parameters, in pure Python and sandboxed.

ConTest expands every step parameter as a Go template with the target as the dot
(``{{ .FQDN | ToUpper }}``, ``{{ if eq .ID "T1" }}a{{ else }}b{{ end }}``).  Existing job
descriptors must run unchanged, so parsing, execution, printing and error messages follow Go's
``text/template`` and ``fmt``.  Usage::

    tpl = parse("ssh {{ .ID }}", name="args", funcs={"ToUpper"})   # once per step
    tpl.execute(target, {"ToUpper": str.upper})                    # once per target

The sandbox: no Python is ever evaluated; a template reads dict keys, and the attributes an
object's class declares in ``__template_fields__`` (Go name -> attribute name), and nothing
else; it calls only Go's built-ins and the functions it is given; its output, loops and string
building are bounded.  ``{{define}}``, ``{{template}}`` and ``{{block}}`` are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from .errors import TemplateError, TemplateExecError, TemplateSyntaxError
from .evaluator import compile_list, execute
from .fields import FieldRef, root_fields
from .nodes import ActionNode, FieldNode, ListNode, TextNode
from .parser import BUILTIN_NAMES, parse_tree
from .runtime import MAX_ITERATIONS, MAX_OUTPUT, MAX_WORK, Run
from .values import get_field

#: a template of text and ``{{ .Name }}`` actions only: its text pieces, and field names (None:
#: the piece is text)
_Plain = tuple[tuple[str, str | None], ...]

__all__ = [
    "BUILTIN_NAMES",
    "MAX_ITERATIONS",
    "MAX_OUTPUT",
    "MAX_WORK",
    "FieldRef",
    "Template",
    "TemplateError",
    "TemplateExecError",
    "TemplateSyntaxError",
    "parse",
    "root_fields",
]


class Template:
    """A parsed template, ready to be executed any number of times."""

    __slots__ = ("_const", "_plain", "_run", "is_constant", "name", "source")

    def __init__(
        self, name: str, source: str, run: Run, const: str | None, plain: _Plain | None = None
    ) -> None:
        self.name = name
        self.source = source
        self._run = run
        self._const = const
        self._plain = plain
        #: True when the text has no actions and no comments: executing returns ``source``.
        self.is_constant = const is not None and const == source

    @property
    def calls_nothing(self) -> bool:
        """True when the template is text and ``{{ .Name }}`` actions only: executing it calls
        no function, so ``execute`` needs none (a step's ``{{ .FQDN }}``, expanded per target)."""
        return self._plain is not None or self._const is not None

    def execute(self, root: object, funcs: Mapping[str, Callable[..., object]]) -> str:
        """Expand the template with ``root`` as the dot (and ``$``).

        ``funcs`` supplies the functions named at parse time (they may also override Go's
        built-ins).  Raises :class:`TemplateExecError` with Go's message on failure.
        """
        if self._const is not None:
            return self._const
        plain = self._plain
        if plain is not None:
            # a field read straight off the dot; anything but a plain string (a missing key,
            # a number to print Go's way, an error to report) goes the whole way below
            out = []
            for text, field in plain:
                if field is None:
                    out.append(text)
                    continue
                try:
                    value = get_field(root, field, False)
                except Exception:
                    break
                if type(value) is not str:
                    break
                out.append(value)
            else:
                s = "".join(out)
                if len(s) <= MAX_OUTPUT:
                    return s
        return execute(self._run, self.name, self.source, root, funcs)

    def __repr__(self) -> str:
        return f"Template(name={self.name!r}, source={self.source!r})"


def parse(text: str, *, name: str = "", funcs: Collection[str] = ()) -> Template:
    """Parse ``text`` as a Go template named ``name`` (the name appears in error messages).

    ``funcs`` names the functions that will be available at execution besides Go's built-ins;
    a call to any other function is a parse error, as in Go.  Raises
    :class:`TemplateSyntaxError`.
    """
    if "{{" not in text:
        return Template(name, text, compile_list(None), text)
    tree = parse_tree(text, name, funcs)
    const: str | None = None
    if all(isinstance(n, TextNode) for n in tree.nodes):
        const = "".join(n.text for n in tree.nodes if isinstance(n, TextNode))
    return Template(name, text, compile_list(tree), const, _plain(tree))


def _plain(tree: ListNode) -> _Plain | None:
    """The template's pieces when it is text and ``{{ .Name }}`` actions only, else None."""
    pieces: list[tuple[str, str | None]] = []
    for n in tree.nodes:
        if isinstance(n, TextNode):
            pieces.append((n.text, None))
            continue
        if not isinstance(n, ActionNode) or n.pipe.decl or len(n.pipe.cmds) != 1:
            return None
        args = n.pipe.cmds[0].args
        if len(args) != 1 or not isinstance(args[0], FieldNode) or len(args[0].ident) != 1:
            return None
        pieces.append(("", args[0].ident[0]))
    return tuple(pieces)
