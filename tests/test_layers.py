"""The kernel's packages are layered (docs/architecture.md, "Layers"): a
lower layer never imports a higher one at run time.  Imports under
TYPE_CHECKING (annotations only) do not count."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "umlpy"
# each package, and the packages above it that it must not import
ABOVE = {
    "kernel": ("security", "vfs", "fs", "syscalls", "io_uring", "drivers", "debug", "net", "block", "checkpoint",
               "boot"),
    "security": ("vfs", "fs", "syscalls", "io_uring", "drivers", "debug", "net", "block", "checkpoint", "boot"),
    "vfs": ("fs", "syscalls", "io_uring", "drivers", "debug", "checkpoint", "boot"),
    "bpf": ("fs", "syscalls", "io_uring", "drivers", "debug", "net", "block", "checkpoint", "boot"),
    "abi": ("kernel", "security", "vfs", "fs", "syscalls", "io_uring", "drivers", "debug", "net", "block", "checkpoint",
            "boot"),
}


def _runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            skip.update(id(n) for n in ast.walk(node))
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_layer_imports_a_higher_one():
    bad = []
    for pkg, above in ABOVE.items():
        for path in sorted((SRC / pkg).rglob("*.py")):
            for mod in _runtime_imports(path):
                if any(mod == f"umlpy.{a}" or mod.startswith(f"umlpy.{a}.") for a in above):
                    bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, "\n".join(sorted(set(bad)))
