"""Kernel images: one executable file holding the guest kernel and its config.

An image is a Python zip application: a `#!` line naming the Python that
built it, then a zip with the `umlpy` kernel package, `umlpy_image.json`
(version, release, default command line) and a `__main__.py` that hands
over to the installed launcher.  The host layer (arch_um, compiled) is the
installed one; the kernel is always the image's own, so an edited and
rebuilt kernel is what boots.
"""
from __future__ import annotations

import json
import os
import stat
import sys
import time
import zipfile
from pathlib import Path

CONFIG_NAME = "umlpy_image.json"
MAIN = """import sys
from umlpy_cli.closed_pipe import quiet_on_closed_pipe
from umlpy_cli.image import run_image
sys.exit(quiet_on_closed_pipe(lambda: run_image(sys.argv[0], sys.argv[1:])))
"""
NOT_IN_IMAGE = ("__main__.py",)    # `python -m umlpy`: the installed command, not the kernel
BOOT_OPTIONS = {"--pdb": "pdb"}     # launcher options that stand for a kernel parameter


def umlpy_version() -> str:
    """The installed package's version (an uninstalled tree: 0.0.0)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as pkg_version
    try:
        return pkg_version("umlpy")
    except PackageNotFoundError:
        return "0.0.0"


def build_image(out: str, cmdline: str = "", version: str | None = None) -> dict:
    import umlpy_cli
    src = Path(__file__).resolve().parent.parent / "umlpy"
    if not (src / "boot.py").exists():
        raise SystemExit(f"kernel sources not found at {src}")
    ver = version or umlpy_version()
    config = {
        "version": ver,
        "release": f"6.1.0-umlpy-{ver}",
        "uts_version": "#1 SMP umlpy " + time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()),
        "cmdline": cmdline,
        "built_by": f"{os.environ.get('USER', 'unknown')} with Python {sys.version.split()[0]}",
        "launcher": umlpy_cli.__name__,
    }
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(f"#!{sys.executable}\n".encode())
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(src.rglob("*.py")):
                if path.relative_to(src).as_posix() in NOT_IN_IMAGE:
                    continue
                name = str(Path("umlpy") / path.relative_to(src))
                z.write(path, name)
                z.writestr(name + "c", _bytecode(path))
            z.writestr(CONFIG_NAME, json.dumps(config, indent=1))
            z.writestr("__main__.py", MAIN)
    os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, out)
    return config


def _bytecode(path: Path) -> bytes:
    """The module compiled now, so a boot imports instead of compiling
    (zipimport takes `x.pyc` beside `x.py`; unchecked: the image is built
    whole).  Its code names the source file it was built from, a path
    that exists, so host debuggers reading co_filename (py-spy, gdb's
    py-bt, pdb, tracebacks) show the file a kernel developer edits
    (docs/debugging.md); a source tree that went away is still a
    readable name, and tracebacks then take the image's copy."""
    import py_compile
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        cfile = os.path.join(d, "m.pyc")
        py_compile.compile(str(path), cfile=cfile, dfile=str(path), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with open(cfile, "rb") as f:
            return f.read()


def read_config(image: str) -> dict:
    try:
        with zipfile.ZipFile(image) as z:
            return json.loads(z.read(CONFIG_NAME))
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise SystemExit(f"umlpy: {image}: not a umlpy kernel image ({e})") from None


class ImageDir:
    """One directory of a kernel image held in memory, as a path entry
    finder (sys.path_importer_cache): the root and each package's directory.

    Linux reads its whole image into memory at boot, and a running UML
    keeps the ELF file it was started from.  zipimport instead reopens the
    image file by name for every module it imports later, at offsets read
    at boot, and the kernel imports many modules at first use (a family's
    sockets, a filesystem's driver): rebuilding `./linux-um` while it ran
    made those imports fail ("bad local file header") as oopses.  So the
    image's bytes are read once, at load, and every import comes from them."""

    def __init__(self, z: zipfile.ZipFile, names: frozenset[str], root: str, prefix: str) -> None:
        self.z, self.names, self.root, self.prefix = z, names, root, prefix

    def _entry(self, fullname: str) -> tuple[str, bool] | None:
        base = self.prefix + fullname.rpartition(".")[2]
        if base + "/__init__.py" in self.names:
            return base + "/__init__.py", True
        if base + ".py" in self.names:
            return base + ".py", False
        return None

    def find_spec(self, fullname: str, target=None):
        import importlib.util
        found = self._entry(fullname)
        if found is None:
            return None
        entry, pkg = found
        spec = importlib.util.spec_from_loader(fullname, ImageLoader(self.z, entry),
                                               origin=os.path.join(self.root, entry), is_package=pkg)
        if pkg:
            where = os.path.join(self.root, entry.rpartition("/")[0])
            spec.submodule_search_locations = [where]
            sys.path_importer_cache[where] = ImageDir(self.z, self.names, self.root,
                                                      entry.rpartition("/")[0] + "/")
        spec.has_location = True
        return spec

    def invalidate_caches(self) -> None:
        pass

    def iter_modules(self, prefix: str = ""):
        """pkgutil's walk over the image (boot.preload)."""
        seen = set()
        for name in sorted(self.names):
            if not name.startswith(self.prefix) or not name.endswith(".py"):
                continue
            head, sep, rest = name[len(self.prefix):].partition("/")
            if sep and rest == "__init__.py" and head not in seen:
                seen.add(head)
                yield prefix + head, True
            elif not sep and head != "__init__.py" and head[:-3] not in seen:
                seen.add(head[:-3])
                yield prefix + head[:-3], False


class ImageLoader:
    """A module of the image: its bytecode when built by this Python, else
    its source compiled (as zipimport would)."""

    def __init__(self, z: zipfile.ZipFile, entry: str) -> None:
        self.z, self.entry = z, entry

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        import importlib.util
        import marshal
        pyc = self.z.read(self.entry + "c")
        if pyc[:4] == importlib.util.MAGIC_NUMBER:
            code = marshal.loads(pyc[16:])
        else:
            code = compile(self.get_source(module.__name__), module.__spec__.origin, "exec",
                           dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname: str) -> str:
        """Tracebacks' lines when the source tree the image names is gone."""
        return self.z.read(self.entry).decode()

    def is_package(self, fullname: str) -> bool:
        return self.entry.endswith("/__init__.py")


def load_kernel(image: str):
    import io
    root = os.path.abspath(image)
    with open(root, "rb") as f:
        z = zipfile.ZipFile(io.BytesIO(f.read()))
    names = frozenset(z.namelist())
    for key in [k for k in sys.path_importer_cache if k == root or k.startswith(root + os.sep)]:
        del sys.path_importer_cache[key]
    sys.path_importer_cache[root] = ImageDir(z, names, root, "")
    if root not in sys.path:
        sys.path.insert(0, root)
    for name in [m for m in sys.modules if m == "umlpy" or m.startswith("umlpy.")]:
        del sys.modules[name]
    import umlpy.boot
    return umlpy.boot


def run_image(image: str, args: list[str]) -> int:
    config = read_config(image)
    if args[:1] in (["--version"], ["-V"]):
        print(f"umlpy kernel {config['release']} {config['uts_version']}")
        return 0
    if args[:1] == ["--showconfig"]:
        for k, v in config.items():
            print(f"{k}={v}")
        return 0
    if args[:1] in (["--help"], ["-h"]):
        load_kernel(image)
        from umlpy.kernel.cmdline import PARAMS
        print(f"usage: {os.path.basename(image)} [parameters] [-- init arguments]")
        for text in PARAMS.values():
            print("  " + text)
        print("  --help: this list;  --version: the kernel version;  --showconfig: the build configuration")
        return 0
    boot = load_kernel(image)
    return boot.start_kernel(config, as_parameters(args))


def restore_words(directory: str, overrides: list[str]) -> list[str]:
    """The command line that restores the checkpoint in directory: the one
    it was taken with (no earlier restore=), each `name=value` of
    overrides replacing the saved word of that name, then restore=DIR,
    and the init arguments last (a restored machine that reboots runs its
    init as the one it was taken from would).  The kernel checks the image
    itself (its digests, its version) before using any of it."""
    with open(os.path.join(directory, "manifest.json"), "rb") as f:
        saved = json.loads(f.read(64 << 20)).get("cmdline")
    if not isinstance(saved, list) or not all(isinstance(w, str) for w in saved):
        raise ValueError("no command line in its manifest")
    init_args: list[str] = []
    if "--" in saved:
        saved, init_args = saved[:saved.index("--")], saved[saved.index("--"):]
    names = {w.partition("=")[0] for w in overrides if "=" in w}
    kept = [w for w in saved if w.partition("=")[0] not in names | {"restore"}]
    return kept + overrides + [f"restore={os.path.abspath(directory)}"] + init_args


def as_parameters(args: list[str]) -> list[str]:
    """Launcher options (BOOT_OPTIONS) among the kernel's words, before
    `--`, become the parameters they stand for: `--pdb` is `pdb`."""
    out: list[str] = []
    for i, word in enumerate(args):
        if word == "--":
            return out + args[i:]
        out.append(BOOT_OPTIONS.get(word, word))
    return out
