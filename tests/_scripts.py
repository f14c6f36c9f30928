"""Loading ``scripts/<name>.py`` in tests: the scripts folder is not a package."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from recsys.config import PROJECT_ROOT


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", PROJECT_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
