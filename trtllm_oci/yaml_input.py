"""Reading YAML: the packaged tables quickly, and files a user hands us within bounds.

Packaged tables (version table, shape catalog, planner constants) are parsed with libyaml's C parser when
PyYAML was built with it: the version table alone takes ~0.3 s with the pure-Python parser, which would
be most of `trtllm-oci plan`'s start-up.

A user's file (a release spec, a shape catalog named by TRTLLM_OCI_SHAPES) is read with the same safe
loader plus three bounds, because a careless or hostile file must fail with a short message, not eat the
machine: its size, the number of values it expands to (nine lines of nested aliases, the "billion laughs",
expand to 10⁹ values once a validator walks them), and duplicate keys (PyYAML keeps the last one silently,
so `tp: 2` followed later by `tp: 8` would build with 8). The file must be UTF-8 text; a binary file is
named as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trtllm_oci.errors import InputError

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_USER_YAML_BYTES = 1024 * 1024
MAX_USER_YAML_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


def load_table(text: str) -> Any:
    """A packaged data table (trusted, shipped with the package)."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader, C or Python


class _UserFileLoader(_SafeLoader):
    """The safe loader that refuses a key given twice in one mapping (merge keys `<<` may be overridden)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base constructor reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"key {_short(key)!r} appears twice in one mapping (first on line "
                        f"{first.start_mark.line + 1}); keep one",
                        key_node.start_mark)
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _expanded_values(root: yaml.Node, limit: int) -> int:
    """How many values the document holds once aliases are expanded, counting up to just past `limit`.

    Aliases make the node graph a DAG whose expansion can be exponential in its size, so each node's
    expanded count is computed once (by identity) and the walk stops as soon as the total passes `limit`."""
    counts: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in counts:
            continue
        if isinstance(node, yaml.ScalarNode):
            counts[id(node)] = 1
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value))
        if children_done:
            counts[id(node)] = min(limit + 1, 1 + sum(counts[id(c)] for c in children))
            if counts[id(node)] > limit:
                return counts[id(node)]
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in counts)
    return counts[id(root)]


def _short(value: object, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def load_user_yaml(path: Path, what: str, *, missing_fix: str = "pass the path of a YAML file",
                   max_bytes: int = MAX_USER_YAML_BYTES, max_values: int = MAX_USER_YAML_VALUES) -> Any:
    """The document in `path`, a file the user gave as `what` (e.g. "release spec"); every problem is an
    InputError that names the file and says what to change (`missing_fix` when it is not there)."""
    label = f"{what} {str(path)!r}"
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{label} is {size} bytes, more than the {max_bytes} a {what} may have; "
                             "is it the right file?")
        raw = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{label} is a directory; {missing_fix}") from None
    except FileNotFoundError:
        raise InputError(f"{label} does not exist; {missing_fix}") from None
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        raise InputError(f"{label} is a binary file (it holds NUL bytes), not YAML text; pass the YAML file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}); save it as "
                         "UTF-8 YAML") from None
    loader = _UserFileLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_values(node, max_values) > max_values:
            raise InputError(f"{label} expands to more than {max_values} values through YAML aliases "
                             "(&anchor / *alias); write the values out instead of nesting aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InputError(f"{label} is not valid YAML: {_yaml_problem(exc)}") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message in one line, with the line and column but without the quoted source excerpt."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return _short(f"{where}{exc.problem or exc.context or 'syntax error'}", 300)
    return _short(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 300)
