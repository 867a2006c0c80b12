"""Glob patterns of ``path:`` selectors, matched without touching the file system.

dbt expands ``path:<pattern>`` with ``Path.glob`` in the root project directory and keeps the
nodes whose file, YAML patch file or any parent directory is among the results. The files and
directories that can take part in such a match are the root project's node, patch and macro
files and their parent directories, all named in the manifest; :class:`PathIndex` holds them
and applies pathlib's glob rules (Python 3.11): ``*``/``?``/``[...]`` within one component,
``**`` for zero or more directories (a trailing ``**`` yields directories only).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from dbt_graph._manifest import Manifest

_WILDCARDS = frozenset("*?[")


def ancestors(path: str) -> Iterator[str]:
    """The parent directories of a relative POSIX path, nearest first.

    >>> list(ancestors("models/staging/stg.sql"))
    ['models/staging', 'models']
    """
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


@dataclass(frozen=True)
class PathIndex:
    """Known files and directories of the root project, as POSIX paths relative to it."""

    files: frozenset[str]
    directories: frozenset[str]
    _cache: dict[str, frozenset[str]] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    @classmethod
    def for_manifest(cls, manifest: Manifest) -> PathIndex:
        """The index of a manifest, built on first use and kept while the manifest lives."""
        index = _INDEXES.get(manifest)
        if index is None:
            index = _INDEXES[manifest] = cls.from_manifest(manifest)
        return index

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> PathIndex:
        """Collect the root project's node, patch and macro files and their directories."""
        root = manifest.project_name
        files: set[str] = set()
        nodes = [*manifest.nodes.values(), *(n for ns in manifest.disabled.values() for n in ns)]
        for node in nodes:
            if node.package_name != root:
                continue
            files.add(node.original_file_path)
            if node.patch_path:
                package, _, file = node.patch_path.partition("://")
                if package == root and file:
                    files.add(file)
        files.update(
            m.original_file_path for m in manifest.macros.values() if m.package_name == root
        )
        files.discard("")
        directories = {parent for file in files for parent in ancestors(file)}
        return cls(frozenset(files - directories), frozenset(directories))

    def glob(self, pattern: str) -> frozenset[str]:
        """The known paths ``Path.glob(pattern)`` would yield.

        Raises:
            ValueError: The pattern is absolute, empty, or uses ``**`` inside a component.

        >>> index = PathIndex(frozenset({"models/a/x.sql"}), frozenset({"models", "models/a"}))
        >>> sorted(index.glob("models/**")), sorted(index.glob("models/*/*.sql"))
        (['models', 'models/a'], ['models/a/x.sql'])
        """
        found = self._cache.get(pattern)
        if found is None:
            found = self._cache[pattern] = _glob(self, pattern)
        return found


_INDEXES: weakref.WeakKeyDictionary[Manifest, PathIndex] = weakref.WeakKeyDictionary()


def _glob(index: PathIndex, pattern: str) -> frozenset[str]:
    path = PurePosixPath(pattern)
    if path.is_absolute():
        raise ValueError("absolute patterns are not supported; use a path relative to the project")
    parts = path.parts
    if not parts:
        raise ValueError("the pattern is empty")
    for part in parts:
        if "**" in part and part != "**":
            raise ValueError("'**' can only be an entire path component")
    found = {f for f in index.files if _match(parts, 0, tuple(f.split("/")), 0, False)}
    found.update(d for d in index.directories if _match(parts, 0, tuple(d.split("/")), 0, True))
    return frozenset(found)


def _match(pattern: tuple[str, ...], i: int, path: tuple[str, ...], j: int, is_dir: bool) -> bool:
    if i == len(pattern):
        return j == len(path)
    part = pattern[i]
    last = i == len(pattern) - 1
    if part == "**":
        if last:
            return is_dir
        return any(_match(pattern, i + 1, path, k, is_dir) for k in range(j, len(path)))
    if j == len(path):
        return False
    name = path[j]
    if _WILDCARDS.intersection(part):
        if not fnmatchcase(name, part):
            return False
    elif name != part:
        return False
    if last:
        return j == len(path) - 1
    return _match(pattern, i + 1, path, j + 1, is_dir)
