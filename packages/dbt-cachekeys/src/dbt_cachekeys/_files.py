"""Reading the files that define nodes, from a dbt project on disk.

Only seeds need it: every other node's own text is in the manifest (``raw_code``). A node's
``original_file_path`` is relative to the root of *its package*, which is the project directory
for the root package and ``<project>/<packages-install-path>/<package>`` for installed packages
(``dbt deps`` links local packages there too).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dbt_graph import Node


class ProjectFiles:
    """A :data:`~dbt_cachekeys.FileReader` for a dbt project on disk.

    It is a plain picklable object, so it can be shipped to worker processes.

    Args:
        project_dir: The root project's directory (where ``dbt_project.yml`` is).
        root_package: The root project's name (``manifest.project_name``).
        packages_install_path: The project's ``packages-install-path``, relative to
            ``project_dir`` or absolute.
        package_dirs: Explicit roots for some packages, overriding the install path.

    Example:
        >>> files = ProjectFiles("/srv/shop", root_package="shop")
        >>> str(files.package_root("shop")), str(files.package_root("dbt_utils"))
        ('/srv/shop', '/srv/shop/dbt_packages/dbt_utils')
    """

    def __init__(
        self,
        project_dir: str | Path,
        *,
        root_package: str,
        packages_install_path: str | Path = "dbt_packages",
        package_dirs: Mapping[str, str | Path] | None = None,
    ) -> None:
        self.project_dir = Path(project_dir)
        self.root_package = root_package
        self.packages_dir = self.project_dir / packages_install_path
        self.package_dirs = {name: Path(p) for name, p in (package_dirs or {}).items()}

    def package_root(self, package_name: str) -> Path:
        """The directory that a package's ``original_file_path`` values are relative to."""
        if package_name in self.package_dirs:
            return self.package_dirs[package_name]
        if package_name == self.root_package:
            return self.project_dir
        return self.packages_dir / package_name

    def __call__(self, node: Node) -> bytes:
        """The bytes of the file that defines ``node``.

        Raises:
            OSError: The node has no file, or the file cannot be read.
        """
        if not node.original_file_path:
            raise FileNotFoundError(f"{node.unique_id} has no original_file_path")
        return (self.package_root(node.package_name) / node.original_file_path).read_bytes()

    def __repr__(self) -> str:
        return f"ProjectFiles({str(self.project_dir)!r}, root_package={self.root_package!r})"
