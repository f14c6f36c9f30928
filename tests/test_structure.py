"""The structure the design promises (DESIGN sections 2, 10, 11), checked on the source text."""

from __future__ import annotations

import re

from recsys.config import PROJECT_ROOT

RECSYS = PROJECT_ROOT / "recsys"
PAGES = PROJECT_ROOT / "pages"


def test_no_library_file_is_over_450_lines():
    long = {str(p.relative_to(PROJECT_ROOT)): n for p in RECSYS.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long


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
