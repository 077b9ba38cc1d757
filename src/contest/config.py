"""``contest serve``'s options from the environment and a TOML file, built over the argparse
declarations of the command, so an option added there has both with no more code.

Every option ``--some-option`` of the parser is also

* the environment variable ``CONTEST_SOME_OPTION``;
* the key ``some_option`` (or ``some-option``) of the TOML file given by ``--config FILE`` or
  ``CONTEST_CONFIG``.

Precedence: command-line flags, then the environment, then the file, then the defaults.
:func:`apply` makes the environment's and the file's values the parser's defaults (converted and
checked as argparse would check a flag), so the flags still win when the command line is
parsed; :func:`render` prints the outcome, each value with where it came from
(``contest serve --print-config``), as a TOML file that ``--config`` reads back.

Values: a TOML string goes through the option's type, as on the command line (``"90s"`` for a
duration); a TOML boolean for on/off options; a TOML list for repeatable ones. In the
environment, on/off options take ``1/true/yes/on`` and ``0/false/no/off``, and repeatable ones
a comma-separated list.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "CONTEST_"
CONFIG_ENV = "CONTEST_CONFIG"
# options about the configuration itself, not configurable by it
_SELF = frozenset({"help", "config", "print_config"})
_TRUE = frozenset({"1", "true", "yes", "on", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "f", ""})


class ConfigError(Exception):
    """A value from the environment or the file is not valid; the message names where."""


@dataclass
class Layers:
    """Where each option's value came from, for ``--print-config``."""

    file: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)  # dest -> "env NAME" | "file PATH"


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The configurable options of ``parser``: every one with a long flag."""
    return [
        a
        for a in parser._actions
        if a.dest not in _SELF and any(s.startswith("--") for s in a.option_strings)
    ]


def long_flag(action: argparse.Action) -> str:
    return next(s for s in action.option_strings if s.startswith("--"))


def env_name(action: argparse.Action) -> str:
    return ENV_PREFIX + long_flag(action)[2:].upper().replace("-", "_")


def file_key(action: argparse.Action) -> str:
    return action.dest


def _is_flag(action: argparse.Action) -> bool:
    """An on/off option (``--x`` / ``--no-x``, or ``store_true``)."""
    return isinstance(action, argparse.BooleanOptionalAction) or (
        action.nargs == 0 and isinstance(action.const, bool)
    )


def _is_list(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+")


def _one(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(value, bool | dict | list) or value is None:
        raise ConfigError(f"{where}: expected a value for {long_flag(action)}, got {value!r}")
    text = str(value)
    converter = action.type
    try:
        result = converter(text) if callable(converter) else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if action.choices is not None and result not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{where}: {text!r} is not one of {choices}")
    return result


def convert(action: argparse.Action, value: Any, where: str, *, from_env: bool) -> Any:
    """``value`` (a string from the environment, or a TOML value) as argparse would store it."""
    if _is_flag(action):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if from_env and text in _TRUE:
            return True
        if from_env and text in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if _is_list(action):
        if from_env:
            items: list[Any] = [v.strip() for v in str(value).split(",") if v.strip()]
        elif isinstance(value, list):
            items = value
        else:
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_one(action, v, where) for v in items]
    return _one(action, value, where)


def _config_path(argv: Sequence[str], environ: Mapping[str, str]) -> Path | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(list(argv))
    path = known.config or environ.get(CONFIG_ENV)
    return Path(path) if path else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"--config {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None


def apply(
    parser: argparse.ArgumentParser, argv: Sequence[str], environ: Mapping[str, str]
) -> Layers:
    """Make the file's and then the environment's values ``parser``'s defaults (flags in
    ``argv`` still win when it parses). Raises :class:`ConfigError`."""
    actions = options(parser)
    by_key: dict[str, argparse.Action] = {}
    for a in actions:
        by_key[file_key(a)] = a
        by_key[file_key(a).replace("_", "-")] = a
    layers = Layers(file=_config_path(argv, environ))
    defaults: dict[str, Any] = {}
    if layers.file is not None:
        for key, value in _read_file(layers.file).items():
            action = by_key.get(key)
            if action is None:
                close = difflib.get_close_matches(key, list(by_key), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"--config {layers.file}: unknown option {key!r}{hint}")
            where = f"--config {layers.file}: {key}"
            defaults[action.dest] = convert(action, value, where, from_env=False)
            layers.sources[action.dest] = f"file {layers.file}"
    for action in actions:
        name = env_name(action)
        if name in environ:
            defaults[action.dest] = convert(action, environ[name], name, from_env=True)
            layers.sources[action.dest] = f"env {name}"
    parser.set_defaults(**defaults)
    return layers


def given_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The options ``argv`` sets itself (by dest)."""
    saved = {a.dest: a.default for a in parser._actions}
    saved_defaults = dict(parser._defaults)
    try:
        for a in parser._actions:
            a.default = argparse.SUPPRESS
        parser._defaults.clear()
        ns, _ = parser.parse_known_args(list(argv))
    finally:
        for a in parser._actions:
            a.default = saved[a.dest]
        parser._defaults.update(saved_defaults)
    return set(vars(ns))


# a password in a URL (scheme://user:password@host) or a Go DSN (user:password@tcp(...))
_PASSWORD = re.compile(r"^((?:[a-z][a-z0-9+.-]*://)?[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)


def _toml(action: argparse.Action, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(action, v) for v in value) + "]"
    fmt = getattr(action.type, "contest_format", None)
    if fmt is not None and not isinstance(value, str):
        value = fmt(value)
    if isinstance(value, int | float):
        return repr(value)
    text = _PASSWORD.sub(lambda m: m.group(1) + "***" + m.group(3), str(value))
    return json.dumps(text, ensure_ascii=False)  # JSON's escapes are TOML's basic string's


def render(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    layers: Layers,
    flags: set[str],
    command: str = "contest serve",
) -> str:
    """The effective configuration as TOML, each value with its source (passwords in URLs
    shown as ``***``)."""
    lines = [
        f"# {command}: the effective configuration; precedence: flags > environment",
        f"# ({ENV_PREFIX}*) > file (--config{f' {layers.file}' if layers.file else ''}) > defaults",
    ]
    for action in options(parser):
        value = getattr(args, action.dest, None)
        if action.dest in flags:
            source = f"flag {long_flag(action)}"
        else:
            source = layers.sources.get(action.dest, "default")
        if not source.startswith("env "):
            source += f" [{env_name(action)}]"
        if value is None:
            lines.append(f"# {file_key(action)} = (not set)  # {source}")
        else:
            lines.append(f"{file_key(action)} = {_toml(action, value)}  # {source}")
    return "\n".join(lines) + "\n"
