"""The layering of docs/ARCHITECTURE.md, checked on the source: imports flow one way,
``app.py → webapp, worker → db, model → core``, and no package reaches up or sideways."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "model", "db", "worker", "webapp")
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "model": {"core"},
    "db": {"core"},
    "worker": {"core", "db", "model"},
    "webapp": {"core", "db", "model"},
}
"""What each package may import of Facet's (besides itself)."""


def facet_imports(path: Path) -> set[str]:
    """Top-level Facet packages that ``path`` imports (at module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(PACKAGES)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package):
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        extra = facet_imports(path) - ALLOWED[package] - {package}
        if extra:
            wrong[str(path.relative_to(ROOT))] = sorted(extra)
    assert not wrong, f"{package}/ reaches outside its layer: {wrong}"


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from webapp.studio import Studio\n    import db.models\n")
    assert facet_imports(bad) == {"webapp", "db"}
