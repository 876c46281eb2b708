"""Reading one YAML file of a policy directory: its document, or the problems that make it unreadable, each with
the file and the line or key path (a syntax error, bytes that are not UTF-8, a key given twice, an alias that
contains itself, nesting beyond any policy's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .problems import Problem

_MAX_YAML_DEPTH = 64  # mappings and lists nested deeper than this are no policy (and a policy is sent as JSON)


def read_yaml(f: Path, problems: list[Problem]) -> Any:
    """The document of one YAML file, or None with its problems added: unreadable bytes, a YAML syntax error
    (with its line), a value YAML cannot build (`2026-02-30`), an alias that contains itself, or nesting beyond
    any policy's. A key given twice in a mapping (YAML itself keeps the last one without a word) is a problem
    too, but the document is still returned, to be checked for its other problems and warnings."""
    import yaml  # local import: the engine itself needs no YAML

    source = str(f)
    try:
        data = f.read_bytes()
    except OSError as exc:
        problems.append(Problem(source, "(file)", f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(Problem(source, f"line {line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x})"))
        return None
    try:
        loader = _loader_class()(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found before parsing
        line = text.count("\n", 0, exc.position) + 1
        problems.append(Problem(source, f"line {line}", f"not readable YAML: {exc.reason} (#x{exc.character:04x})"))
        return None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        found, usable = _structure_problems(node, loader, source)
        problems.extend(found)
        # a duplicate key is reported, and the document still checked (as YAML reads it) for its other problems
        return loader.construct_document(node) if usable else None
    except yaml.MarkedYAMLError as exc:
        where, context = _position(exc.problem_mark or exc.context_mark), exc.context
        if context and exc.context_mark is not None and exc.problem_mark is not None:
            context = f"{context} ({_position(exc.context_mark)})"
        what = "; ".join(str(x) for x in (context, exc.problem) if x)
        problems.append(Problem(source, where, f"not readable YAML: {what}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(source, "(file)", f"not readable YAML: {exc}".replace("\n", " ")))
    except RecursionError:
        problems.append(Problem(source, "(file)", f"not readable YAML: nested more than {_MAX_YAML_DEPTH} levels"))
    finally:
        loader.dispose()
    return None


def _position(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"


def _structure_problems(root: Any, loader: Any, source: str) -> tuple[list[Problem], bool]:
    """Duplicate keys, self-containing aliases and excessive nesting in a composed YAML node tree, each with its
    key path (`nodes.site_survey`), in the order of their lines; and whether the tree can be built and checked
    (not with the last two)."""
    import yaml

    found: list[tuple[int, Problem]] = []
    usable = True
    seen: set[int] = set()  # nodes already checked (an alias shares its anchor's node)
    stack: list[tuple[Any, str, int, frozenset[int]]] = [(root, "", 1, frozenset())]
    while stack:
        node, path, depth, above = stack.pop()
        line = node.start_mark.line + 1
        if id(node) in above or depth > _MAX_YAML_DEPTH:
            where = path if len(path) <= 60 else f"{path[:57]}..."
            problem = "an alias that contains itself" if id(node) in above else \
                f"nested more than {_MAX_YAML_DEPTH} levels deep"
            found.append((line, Problem(source, where, problem)))
            usable = False
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        inside = above | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]", depth + 1, inside) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: keys given next to it override it
                    continue
                scalar = isinstance(key_node, yaml.ScalarNode)
                key = loader.construct_object(key_node) if scalar else key_node
                name = str(key) if scalar else "(complex key)"
                here = f"{path}.{name}" if path else name
                key_line = key_node.start_mark.line + 1
                try:
                    earlier = first_line.get(key)
                    first_line.setdefault(key, key_line)
                except TypeError:  # an unhashable key: building the document reports it
                    earlier = None
                if earlier is not None:
                    found.append((key_line, Problem(source, here, f"duplicate key (line {key_line}, first on line "
                                                                  f"{earlier}): YAML would silently keep the last")))
                stack.append((value_node, here, depth + 1, inside))
    found.sort(key=lambda item: item[0])
    return [problem for _, problem in found], usable


def _loader_class() -> Any:
    """A YAML SafeLoader whose errors building a value (a date like 2026-02-30, an integer of thousands of
    digits) carry the line of that value, like its syntax errors."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            def construct_object(self, node: Any, deep: bool = False) -> Any:
                try:
                    return super().construct_object(node, deep)
                except (ValueError, OverflowError) as exc:
                    raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None

        _LOADER = Loader
    return _LOADER


_LOADER: Any = None
