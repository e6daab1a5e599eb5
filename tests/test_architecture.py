"""The house (docs/architecture.md): which floor may import which, checked on the source itself.

- the wings (generators, baselines, leaderboard) never import each other;
- facebench's vocabulary (everything in facebench/ outside facebench/app/) imports no wing;
- no import cycles between the project's modules (lazy and type-only imports count: they are real edges).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("facebench", "generators", "baselines", "leaderboard")
WINGS = ("generators", "baselines", "leaderboard")
APP_FLOOR = "facebench.app"
ENTRY = "facebench.__main__"  # `python -m facebench`: the app floor's front door


def module_imports(root: Path) -> dict[str, set[str]]:
    """Module name → the project modules it imports (anywhere in the file), for every .py under ``root``."""
    out: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_init = parts[-1] == "__init__"
            mod = ".".join(parts[:-1] if is_init else parts)
            names: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {a.name for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = mod.split(".") if is_init else mod.split(".")[:-1]
                        base = base[: len(base) - node.level + 1]
                        name = ".".join(base + ([node.module] if node.module else []))
                    else:
                        name = node.module or ""
                    names |= {name} | {f"{name}.{a.name}" for a in node.names}
            out[mod] = {n for n in names if n.split(".")[0] in PACKAGES}
    return out


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Every broken rule of the house, one line each."""
    bad = []
    for mod, names in sorted(imports.items()):
        top = mod.split(".")[0]
        for name in sorted(names):
            other = name.split(".")[0]
            if top in WINGS and other in WINGS and other != top:
                bad.append(f"wing {mod} imports wing {name}")
            in_app = mod in (APP_FLOOR, ENTRY) or mod.startswith(APP_FLOOR + ".")
            if top == "facebench" and not in_app and other in WINGS:
                bad.append(f"vocabulary {mod} imports wing {name}")
            if top == "facebench" and not in_app and name.startswith(APP_FLOOR):
                bad.append(f"vocabulary {mod} imports the app floor ({name})")
    graph = {m: {n for n in names if n in imports and n != m} for m, names in imports.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                if not all(c == c.split(".")[0] or imports_is_package(c) for c in cycle[:-1]):
                    bad.append("cycle " + " -> ".join(cycle))
            elif not state.get(n):
                visit(n, stack)
        stack.pop()
        state[m] = 2

    def imports_is_package(m: str) -> bool:
        return any(k.startswith(m + ".") for k in imports)

    for m in sorted(graph):
        if not state.get(m):
            visit(m, [])
    return bad


def test_the_house_keeps_its_import_directions() -> None:
    imports = module_imports(ROOT)
    assert len(imports) > 100 and "facebench.app.cli" in imports  # the check sees the real tree
    assert violations(imports) == []


def test_the_check_catches_each_kind_of_violation(tmp_path: Path) -> None:
    """The same check on a small tree that breaks every rule once (so the test above cannot pass vacuously)."""
    files = {
        "facebench/__init__.py": "",
        "facebench/labels.py": "import generators.heads\n",  # vocabulary -> wing
        "facebench/pose.py": "from facebench.app import cli\n",  # vocabulary -> app floor
        "facebench/app/__init__.py": "",
        "facebench/app/cli.py": "import baselines.train\nimport generators.heads\n",  # allowed
        "generators/__init__.py": "",
        "generators/heads.py": "def f():\n    from leaderboard import host\n",  # wing -> wing, even lazily
        "baselines/__init__.py": "",
        "baselines/train.py": "from baselines import predict\n",
        "baselines/predict.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import baselines.train\n",
        "leaderboard/__init__.py": "",
        "leaderboard/host.py": "from facebench import labels\n",  # allowed
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = violations(module_imports(tmp_path))
    assert "vocabulary facebench.labels imports wing generators.heads" in found
    assert "vocabulary facebench.pose imports the app floor (facebench.app)" in found
    assert "wing generators.heads imports wing leaderboard.host" in found
    assert any(f.startswith("cycle baselines.") for f in found)
    assert not any(f.startswith(("vocabulary facebench.app", "wing leaderboard.host")) for f in found)
