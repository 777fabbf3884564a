"""Every use of ruamel.yaml: reading config files with line numbers and bounds, and editing
them in place with the user's comments, order and layout kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

# YAML aliases share one node, but everything after parsing sees it expanded, once per use:
# a few hundred bytes of nested aliases ("billion laughs") expand to billions of nodes.
MAX_ALIASES = 100  # alias uses in one file
MAX_ALIAS_NODES = 10_000  # nodes the alias uses of one file add once expanded
MAX_DEPTH = 50  # nesting levels of one file (mappings, lists, values)

Path_ = tuple[str | int, ...]


class YamlProblem(Exception):
    """A file that is not YAML, or more YAML than a config ever needs; ``line`` is 1-based
    (0 when unknown)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_tree(text: str) -> Any:
    """``text`` parsed into mappings and lists that remember their line numbers (an empty
    mapping for an empty file); raises :class:`YamlProblem`."""
    try:
        tree = _loader().load(text)
    except (_YamlLimitError, MaxDepthExceededError) as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark is not None else 0
        limit = isinstance(err, _YamlLimitError)
        raise YamlProblem(
            line, str(err.problem) if limit else f"nested more than {MAX_DEPTH} levels deep"
        ) from None
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 0
        message = f"YAML syntax error: {err.problem or err.context}"
        if err.context and err.context_mark is not None and err.problem:
            started = err.context.removeprefix("while parsing a ")
            message += f" (in the {started} started at line {err.context_mark.line + 1})"
        raise YamlProblem(line, message) from None
    except YAMLError as err:
        raise YamlProblem(0, f"YAML error: {err}") from None
    return CommentedMap() if tree is None else tree


def line_of(tree: Any, path: Path_, *, key: bool = False) -> int:
    """1-based line of the value at ``path`` (or of its key), else of its nearest ancestor."""
    node, line = tree, 1
    if isinstance(node, CommentedMap | CommentedSeq):
        line = node.lc.line + 1
    for step in path:
        if isinstance(node, CommentedMap) and step in node:
            pos = node.lc.key(step) if key else node.lc.value(step)
            line, node = pos[0] + 1, node[step]
        elif isinstance(node, CommentedSeq) and isinstance(step, int) and step < len(node):
            line, node = node.lc.item(step)[0] + 1, node[step]
        elif isinstance(node, CommentedMap | CommentedSeq):
            continue  # a step that is not in the file (a union tag): keep walking
        else:
            break
    return line


def column_of(tree: Any, path: Path_) -> int:
    """0-based column where the value at ``path`` starts, when it is in a mapping or list."""
    node, col = tree, 0
    for step in path:
        if isinstance(node, CommentedMap) and step in node:
            col, node = node.lc.value(step)[1], node[step]
        elif isinstance(node, CommentedSeq) and isinstance(step, int) and step < len(node):
            col, node = node.lc.item(step)[1], node[step]
    return col


class Editor:
    """Round-trip editing: what it loads, changed through :meth:`mapping` and
    :meth:`sequence` values, dumps back with everything the user wrote kept."""

    def __init__(self) -> None:
        self._yaml = YAML(typ="rt")
        self._yaml.preserve_quotes = True
        self._yaml.width = 4096
        self._yaml.indent(mapping=2, sequence=4, offset=2)

    def load(self, text: str) -> Any:
        return self._yaml.load(text) or CommentedMap()

    def dump(self, document: Any, out: IO[str]) -> None:
        self._yaml.dump(document, out)

    @staticmethod
    def mapping(**values: Any) -> Any:
        return CommentedMap(**values)

    @staticmethod
    def sequence() -> Any:
        return CommentedSeq()


class _YamlLimitError(ComposerError):
    """A file nests or aliases more than a config ever needs."""


class _BoundedComposer(Composer):
    """Composes a YAML file, refusing alias bombs and cycles at the alias that crosses the line.

    Each node's expanded size (counting every alias use in full) is known once
    the node is composed, so the check costs one addition per node.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._sizes: dict[int, int] = {}
        self._aliases = 0
        self._alias_nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.parser.check_event(AliasEvent):
            node = super().compose_node(parent, index)
            self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in _children(node))
            return node
        mark = self.parser.peek_event().start_mark
        node = super().compose_node(parent, index)
        size = self._sizes.get(id(node))
        if size is None:
            raise _YamlLimitError(None, None, "a YAML alias inside the node it names", mark)
        self._aliases += 1
        self._alias_nodes += size
        if self._aliases > MAX_ALIASES:
            raise _YamlLimitError(
                None, None, f"more than {MAX_ALIASES} YAML aliases (*name) in one file", mark
            )
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise _YamlLimitError(
                None,
                None,
                f"YAML aliases (*name) expand to more than {MAX_ALIAS_NODES} values in one file",
                mark,
            )
        return node


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Composer = _BoundedComposer
    yaml.max_depth = MAX_DEPTH
    return yaml
