"""The structure the design promises (DESIGN sections 2, 10, 11), checked on the source text."""

from __future__ import annotations

import ast
import importlib
import io
import re
import tokenize

from recsys.config import PROJECT_ROOT

RECSYS = PROJECT_ROOT / "recsys"
PAGES = PROJECT_ROOT / "pages"
DESIGN = PROJECT_ROOT / "docs" / "DESIGN.md"

#: Code lines (docstrings, comments and blank lines left out) a library file may hold: a file is cut where its
#: meaning changes, and one past this holds two things.
MAX_CODE_LINES = 350
#: Code lines one function or method may hold.
MAX_FUNCTION_LINES = 80
#: Functions over :data:`MAX_FUNCTION_LINES`, each with why it stays whole for now (none may grow, none may join).
LONG_FUNCTIONS = {
    "recsys/precompute.py:_precompute": "the resumable pipeline: its two closures (PCA, shard writer) share the "
                                        "run's manifest and writer state; splitting wants a class (not done yet)",
    "recsys/data/polyvore.py:ingest_polyvore": "one pass over the release's files, counting what it leaves out in "
                                               "one report; to be cut into a reader per file",
    "recsys/artifacts.py:load_artifacts": "checks the manifest field by field, each with its own one-sentence error",
    "recsys/benchmarks/index_scale.py:bench_scale": "a benchmark's table of backends by sizes, written as one loop",
}
#: The UI package: the top layer, whatever else it holds.
TOP_PREFIXES = ("recsys.ui",)


# ---------------------------------------------------------------------- sizes
def code_lines(source: str) -> set[int]:
    """Line numbers holding code: not blank, not only a comment, not part of a docstring."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER):
            lines.update(range(token.start[0], token.end[0] + 1))
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            lines.difference_update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def test_code_lines_count_code_only():
    source = '"""A docstring\nof two lines."""\n\n# a comment\nx = 1  # code\n\ndef f():\n    """Doc."""\n    return x\n'
    assert sorted(code_lines(source)) == [5, 7, 9]


def test_no_library_file_is_over_the_code_line_cap():
    long = {str(p.relative_to(PROJECT_ROOT)): n for p in RECSYS.rglob("*.py")
            if (n := len(code_lines(p.read_text(encoding="utf-8")))) > MAX_CODE_LINES}
    assert not long, f"over {MAX_CODE_LINES} code lines: {long}"


def test_no_function_is_over_the_function_line_cap():
    long = {}
    for path in RECSYS.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        code = code_lines(source)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = len(code & set(range(node.lineno, node.end_lineno + 1)))
                key = f"{path.relative_to(PROJECT_ROOT)}:{node.name}"
                if n > MAX_FUNCTION_LINES:
                    long[key] = n
    assert set(long) <= set(LONG_FUNCTIONS), {k: v for k, v in long.items() if k not in LONG_FUNCTIONS}
    assert set(LONG_FUNCTIONS) <= set(long), f"no longer long, drop from LONG_FUNCTIONS: {set(LONG_FUNCTIONS) - set(long)}"


# ---------------------------------------------------------------------- layers
def design_layers() -> list[tuple[str, list[str]]]:
    """``[(layer, [module names])]`` of DESIGN's layer table, lowest first."""
    text = DESIGN.read_text(encoding="utf-8")
    table = text[text.index("### The layers"):]
    rows = re.findall(r"^\| (\d+ [\w ]+?) \| (.+) \|$", table, re.M)
    assert rows, "DESIGN section 2 has no layer table"
    return [(layer, re.findall(r"`([\w.]+)`", names)) for layer, names in rows]


def source_modules() -> dict[str, object]:
    """``{dotted module name: path}`` of the library, the pages, the router and the scripts."""
    modules = {}
    for path in [*RECSYS.rglob("*.py"), *PAGES.glob("*.py"), *(PROJECT_ROOT / "scripts").glob("*.py"),
                 PROJECT_ROOT / "streamlit_app.py"]:
        parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(path, modules) -> list[tuple[str, int, bool]]:
    """``[(module imported, line, inside a function)]``: every ``import`` of ``path`` (module level and inside
    functions) that names one of ``modules``, each resolved to the longest module name it reaches."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            module = resolve(target)
            if module is not None:
                found.append((module, node.lineno, id(node) in nested))
    return found


def layer_index(module: str, layers) -> int | None:
    """The index of ``module``'s layer: the longest name of the table it is or sits under."""
    if module.startswith(TOP_PREFIXES):
        return len(layers) - 1
    best, index = "", None
    for k, (_, names) in enumerate(layers):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, index = name, k
    return index


def import_graph():
    modules = source_modules()
    return modules, {m: imports_of(path, modules) for m, path in modules.items()}


def upward_imports(layers) -> list[str]:
    """``"a -> b (line N)"`` for each import that runs up the layers (or reaches a module in no layer)."""
    modules, graph = import_graph()
    found = []
    for module, imports in graph.items():
        mine = layer_index(module, layers)
        if mine is None:
            found.append(f"{module} is in no layer of DESIGN section 2")
            continue
        for target, line, _ in imports:
            theirs = layer_index(target, layers)
            if theirs is None or theirs > mine:
                found.append(f"{module} -> {target} (line {line})")
    return found


def import_cycles() -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan's algorithm)."""
    _, graph = import_graph()
    edges = {m: sorted({t for t, _, _ in imports if t != m}) for m, imports in graph.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_imports_run_down_the_layers_design_names():
    assert upward_imports(design_layers()) == []


def test_no_import_cycles():
    assert import_cycles() == []


def test_protocols_and_services_see_the_oracle_not_the_world_generator():
    _, graph = import_graph()
    seen = {f"{m} -> {t}" for m, imports in graph.items() if m.startswith("recsys.tasks")
            for t, _, _ in imports if t.startswith(("recsys.data.demo_world", "recsys.data.worldgen"))}
    assert not seen


def test_the_store_and_the_registry_import_no_task():
    _, graph = import_graph()
    for module in ("recsys.store", "recsys.models.registry"):
        assert not [t for t, _, _ in graph[module] if t.startswith("recsys.tasks")], module


def test_design_names_only_modules_that_exist():
    """Every dotted ``recsys.`` name and every ``.py`` path DESIGN puts in backticks exists (a module, or a name
    defined in one)."""
    text = DESIGN.read_text(encoding="utf-8")
    missing = []
    for name in sorted(set(re.findall(r"`(recsys(?:\.\w+)+)", text))):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                module = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            target = module
            for attribute in parts[cut:]:
                target = getattr(target, attribute, None)
            if target is None:
                missing.append(name)
            break
        else:
            missing.append(name)
    for path in sorted(set(re.findall(r"`((?:recsys|pages|scripts|tests)/[\w/]+\.py)", text))):
        if not (PROJECT_ROOT / path).is_file():
            missing.append(path)
    modules = source_modules()
    for layer, names in design_layers():
        missing += [f"{layer}: {n}" for n in names if not any(m == n or m.startswith(n + ".") for m in modules)]
    assert not missing


def test_pages_hold_no_cache_and_import_only_services():
    allowed = re.compile(r"^from recsys(\.tasks\.\w+)? import (ui|service as \w+)$")
    for page in PAGES.glob("*.py"):
        source = page.read_text(encoding="utf-8")
        assert "st.cache_" not in source, page.name
        imports = [line for line in source.splitlines() if line.startswith(("import recsys", "from recsys"))]
        assert imports and all(allowed.match(line) for line in imports), (page.name, imports)


def test_only_the_ui_layer_imports_streamlit():
    importers = {p.relative_to(RECSYS).parts[0] for p in RECSYS.rglob("*.py")
                 if re.search(r"^\s*(import streamlit|from streamlit)", p.read_text(encoding="utf-8"), re.M)}
    assert importers == {"ui"}


def test_no_model_type_dispatch_in_protocols_services_or_pages():
    files = list(PAGES.glob("*.py")) + list(RECSYS.glob("tasks/*/protocol.py")) + list(RECSYS.glob("tasks/*/service.py"))
    for path in files:
        for match in re.finditer(r"isinstance\([^,]+,\s*\(?([\w., ]+)", path.read_text(encoding="utf-8")):
            names = {n.strip().split(".")[-1] for n in match.group(1).split(",")}
            assert not names & {"VECF", "VBPR", "DVBPR", "BPR", "MultimodalVBPR", "TripletCompatibility",
                                "TypeAwareCompatibility", "Combiner", "ImageDifference", "DemoClip"}, path.name


def test_every_package_a_test_skips_without_is_pinned_for_make_test():
    """A test that skips when a package is absent (``pytest.importorskip``) runs under ``make test`` only if that
    installs the package: each is pinned in requirements.txt or requirements-scale.txt (polars was not)."""
    import importlib.metadata

    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pinned = set()
    for name in ("requirements.txt", "requirements-scale.txt"):
        for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines():
            requirement = line.split("#")[0].strip()
            if requirement:
                pinned.add(normal(re.split(r"[=<>!~\[;\s]", requirement)[0]))
    distributions = importlib.metadata.packages_distributions()
    unpinned = []
    for path in sorted((PROJECT_ROOT / "tests").glob("*.py")):
        for module in re.findall(r"importorskip\(\s*[\"']([\w.]+)[\"']", path.read_text(encoding="utf-8")):
            top = module.split(".")[0]
            if not {normal(d) for d in distributions.get(top, [top])} & pinned:
                unpinned.append(f"{path.name}: {module}")
    assert not unpinned, unpinned


def test_the_library_imports_without_streamlit():
    # Only the UI package may need Streamlit: scripts, workers and notebooks import the rest without it installed.
    import subprocess
    import sys

    modules = sorted(m for m in source_modules() if m.startswith("recsys") and not m.startswith(TOP_PREFIXES))
    code = ("import importlib, sys\nsys.modules['streamlit'] = None  # any import of it raises ImportError\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(modules) > 50
