"""YAML text -> a tree of values that remember where they were written (`Val`).

PyYAML's composer gives the nodes; this keeps each value's line and column for error messages,
refuses what plain configuration never needs (tags, recursive aliases, duplicate keys), and
gives syntax errors a hint. Command-line values are wrapped in the same `Val` (without a
position) so one set of readers serves both.

PyYAML is imported where a config file is parsed: a command-line watch never needs it, and it is
~10 ms of a one-liner's start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from watchd.errors import ConfigError

if TYPE_CHECKING:
    import yaml


@dataclass(frozen=True, slots=True)
class Val:
    """A configuration value with where it came from (line/column are 1-based; None on the CLI)."""

    value: object  # str | int | float | bool | None | list[Val] | dict[str, Val]
    kind: str  # "str" | "int" | "float" | "bool" | "null" | "seq" | "map" | "other"
    line: int | None = None
    column: int | None = None
    raw: str | None = None  # the scalar as written
    key_line: int | None = field(default=None, compare=False)
    key_column: int | None = field(default=None, compare=False)
    explicit: bool = field(default=True, compare=False)  # False: merged in with <<


# The tags plain YAML resolves by itself; any other (!!python/tuple, !custom) was written on purpose.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}"
    for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge")
)
_TAG_KINDS = {
    "tag:yaml.org,2002:str": "str",
    "tag:yaml.org,2002:int": "int",
    "tag:yaml.org,2002:float": "float",
    "tag:yaml.org,2002:bool": "bool",
    "tag:yaml.org,2002:null": "null",
}


def from_yaml(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    source: str,
    path: str = "",
    _seen: dict[int, Val] | None = None,
    _open: set[int] | None = None,
) -> Val:
    """Convert a composed node, keeping positions. Aliases share one `Val` (no blow-up)."""
    import yaml  # noqa: PLC0415 (lazy, see the module's imports)

    seen = {} if _seen is None else _seen
    open_ = set() if _open is None else _open
    if id(node) in seen:
        return seen[id(node)]
    line, col = node.start_mark.line + 1, node.start_mark.column + 1

    def check_cycle(child: yaml.Node, key: str, at: tuple[int, int]) -> None:
        # The alias's own position is gone after composing: point at its key (or its list).
        if id(child) in open_:
            raise ConfigError(
                "an alias refers to the anchor that contains it (remove the *alias)",
                source=source,
                line=at[0],
                column=at[1],
                key=key,
            )

    if node.tag not in _PLAIN_TAGS:
        raise ConfigError(
            f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r} is not allowed (remove it: "
            "watchd reads plain YAML values)",
            source=source,
            line=line,
            column=col,
            key=path or None,
        )
    open_.add(id(node))
    result: Val
    if isinstance(node, yaml.MappingNode):
        explicit = {id(k) for k, _ in node.value}
        try:
            loader.flatten_mapping(node)  # YAML merge keys (<<: *base)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or node.start_mark
            raise ConfigError(
                f"bad merge key: {exc.problem} (write <<: *anchor or <<: [*one, *two])",
                source=source,
                line=mark.line + 1,
                column=mark.column + 1,
                key=path or None,
            ) from None
        out: dict[str, Val] = {}
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "keys must be plain names, not a list or mapping (write name: value)",
                    source=source,
                    line=kline,
                    column=kcol,
                    key=path or None,
                )
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            # Keys merged in with << are overridden by the mapping's own keys, as YAML says;
            # only a key written twice in the mapping itself is an error.
            if key in out and id(key_node) in explicit and out[key].explicit:
                raise ConfigError(
                    f"duplicate key (first defined on line {out[key].key_line}; keep only one)",
                    source=source,
                    line=kline,
                    column=kcol,
                    key=child,
                )
            check_cycle(value_node, child, (kline, kcol))
            v = from_yaml(loader, value_node, source, child, seen, open_)
            out[key] = Val(v.value, v.kind, v.line, v.column, v.raw, kline, kcol, id(key_node) in explicit)
        result = Val(out, "map", line, col)
    elif isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            check_cycle(item, f"{path}[{i}]", (line, col))
            items.append(from_yaml(loader, item, source, f"{path}[{i}]", seen, open_))
        result = Val(items, "seq", line, col)
    else:
        assert isinstance(node, yaml.ScalarNode)
        kind = _TAG_KINDS.get(node.tag, "other")
        try:
            value = loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            value, kind = node.value, "str"  # e.g. "!!int abc": keep the text as written
        if kind == "other":
            value, kind = str(node.value), "str"  # timestamps etc.: keep the text as written
        result = Val(value, kind, line, col, str(node.value))
    open_.discard(id(node))
    seen[id(node)] = result
    return result


def cli_value(value: object) -> Val:
    """Wrap a command-line value (no position) for the shared validators."""
    if isinstance(value, Val):
        return value
    if isinstance(value, bool):
        return Val(value, "bool")
    if isinstance(value, list | tuple):
        return Val([cli_value(v) for v in value], "seq")
    if value is None:
        return Val(None, "null")
    return Val(str(value), "str", raw=str(value))


def compose(text: str, source: str) -> yaml.Node | None:
    """The YAML text as one node tree, or None if it is empty; syntax errors as ConfigError."""
    import yaml  # noqa: PLC0415 (lazy, see the module's imports)
    from yaml.composer import ComposerError  # noqa: PLC0415
    from yaml.reader import ReaderError  # noqa: PLC0415

    def error(message: str, mark: yaml.Mark | None) -> ConfigError:
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        return ConfigError(message, source=source, line=line, column=column)

    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters already
        return loader.get_single_node()
    except ReaderError as exc:
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise ConfigError(
            f"YAML syntax error: control character #x{exc.character:04x} is not allowed "
            '(remove it, or write it as an escape in a "double-quoted" string)',
            source=source,
            line=line,
            column=column,
        ) from None
    except ComposerError as exc:
        if exc.problem == "but found another document":
            raise error(
                "YAML syntax error: more than one document (remove the second '---' and what follows)",
                exc.problem_mark,
            ) from None
        raise error(f"YAML error: {exc.problem} (check anchors and aliases)", exc.problem_mark) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        hint = (
            "indent with spaces, not tabs" if "'\\t'" in problem else "check indentation, colons and quoting"
        )
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "${" in lines[mark.line]:
            hint = 'quote values that contain ${...}, e.g. ["${APP_DIR}/src"]: in YAML { starts a mapping'
        if exc.context and exc.context.startswith("while ") and exc.context_mark is not None:
            started = exc.context.split(" ", 2)[-1]  # "while parsing a flow sequence" -> "a flow ..."
            if exc.context_mark.line != (mark.line if mark else None):
                hint = f"in {started} started on line {exc.context_mark.line + 1}: {hint}"
        raise error(f"YAML syntax error: {problem} ({hint})", mark) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"YAML error: {exc} (check the file's encoding and syntax)", source=source
        ) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply (flatten the structure)", source=source) from None
    finally:
        if loader is not None:
            loader.dispose()
