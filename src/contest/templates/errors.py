"""Template errors: Go's messages, with the template name and a line:column position.

Go prints ``template: NAME:LINE: detail`` for a parse error and
``template: NAME:LINE:COL: executing "NAME" at <node>: detail`` for an execution error.  We
always give ``LINE:COL`` so that a message names the parameter and the exact spot; ``col`` is
1-based and counts characters (Go's execution errors print a 0-based byte offset there).
"""

from __future__ import annotations

from contest.golang.strconv import quote


class TemplateError(Exception):
    """Base of every template error; ``str()`` is the Go-like message."""

    def __init__(self, message: str, *, name: str, line: int, col: int, detail: str) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.line = line
        self.col = col
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class TemplateSyntaxError(TemplateError):
    """The template text does not parse."""


class TemplateExecError(TemplateError):
    """Executing a parsed template failed (unknown field, failing function, limits...)."""


def line_col(source: str, pos: int) -> tuple[int, int]:
    """1-based line and 1-based character column of index ``pos`` in ``source``."""
    pos = max(0, min(pos, len(source)))
    line = source.count("\n", 0, pos) + 1
    start = source.rfind("\n", 0, pos) + 1
    return line, pos - start + 1


def syntax_error(name: str, source: str, pos: int, detail: str) -> TemplateSyntaxError:
    line, col = line_col(source, pos)
    return TemplateSyntaxError(
        f"template: {name}:{line}:{col}: {detail}", name=name, line=line, col=col, detail=detail
    )


def exec_error(name: str, source: str, pos: int, context: str, detail: str) -> TemplateExecError:
    line, col = line_col(source, pos)
    message = f"template: {name}:{line}:{col}: executing {quote(name)} at <{context}>: {detail}"
    return TemplateExecError(message, name=name, line=line, col=col, detail=detail)
