"""The package layout holds: no import cycles, dependencies run one way, and the cost model
stays free of torch and SimPy (README, "Layout")."""
import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "simulator"
# Lowest first: a package may import only from itself and packages before it.
LAYERS = ["core", "data", "models", "training", "profiling", "links", "costmodel", "sim", "engines", "scenario", "report", "sweep",
          "fleet", "emulation", "cli", "__main__"]


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every simulator module -> the simulator modules it imports (anywhere in the file, lazily or not)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    found = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                candidates = [f"{module}.{alias.name}" for alias in node.names] + [module]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in modules:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
        found[name] = targets
    return found


def test_no_import_cycles():
    graph = imports()
    visiting, done, cycles = set(), set(), []

    def visit(node, trail):
        if node in visiting:
            cycles.append(trail[trail.index(node):] + [node])
            return
        if node in done:
            return
        visiting.add(node)
        for target in graph[node]:
            if not target.endswith("__init__") and target in graph and not (PACKAGE / "/".join(
                    target.split(".")[1:]) / "__init__.py").exists():
                visit(target, trail + [node])
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node, [])
    assert not cycles, cycles[:3]


def test_dependencies_run_one_way():
    wrong = []
    for module, targets in imports().items():
        layer = module.split(".")[1] if "." in module else None
        if layer is None:
            continue
        for target in targets:
            other = target.split(".")[1] if "." in target else None
            if other is not None and LAYERS.index(other) > LAYERS.index(layer):
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_the_cost_model_imports_neither_torch_nor_simpy():
    code = ("import sys, simulator.costmodel, simulator.costmodel.memory, simulator.core.names, simulator.core.text; "
            "print(sorted(m for m in ('torch', 'simpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
