"""Where the package's bundled resources live (one place decides paths, STYLE.md §3)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parents[1]


def _resource(repo_relative: str, bundled: str) -> Path:
    # An editable install (the Makefile's) reads the repository; a wheel carries copies in _resources.
    in_repo = _REPO / repo_relative
    return in_repo if in_repo.exists() else _PACKAGE / "_resources" / bundled


def notebooks_dir() -> Path:
    return _resource("notebooks", "notebooks")


def data_templates_dir() -> Path:
    return _resource("data_templates", "data_templates")


def catalog_dir() -> Path:
    return _resource("playbook/catalog", "catalog")


def reports_dir() -> Path:
    return _resource("reports", "reports")


def repo_root() -> Path | None:
    return _REPO if (_REPO / "pyproject.toml").exists() else None
