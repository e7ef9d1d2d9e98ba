"""The course assignments, proved: the reference solution scores full marks, the fresh student
release scores zero and still runs, a plausible bug in each assignment loses points, one solved
assignment earns exactly its points, and broken submissions (and a grader step that fails)
still get a report. The attacks of a student who wants points without solving are in
test_grader_attacks.py."""

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tinyvae.assignments import grade as grader
from tinyvae.assignments import spec
from tinyvae.assignments.build import build, collect_regions, find_leaks
from tinyvae.assignments.grade import grade, isolate
from tinyvae.assignments.markers import BEGIN, STUDENT_BEGIN, STUDENT_END, MarkerError, replace_regions, scan

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = collect_regions(spec.PACKAGE)
ALL_KEYS = {key for a in spec.ASSIGNMENTS for key in a.regions}
IDS = [a.id for a in spec.ASSIGNMENTS]


def python(*args, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def copy_of(folder, into):
    """A submission folder holding a copy of ``folder``/tinyvae."""
    shutil.copytree(Path(folder) / "tinyvae", into / "tinyvae", ignore=shutil.ignore_patterns("__pycache__"))
    return into


def solve(submission, ids):
    """Write the reference code into the regions of the assignments ``ids``, as a student would."""
    solved = {key for i in ids for key in spec.get(i).regions}
    assert isolate(submission / "tinyvae", REFERENCE, keep=ALL_KEYS - solved) == []
    return submission


def edit_region(submission, key, old, new):
    """Replace ``old`` by ``new`` inside the region ``key`` of the submission (every occurrence, at least one)."""
    region = next(r for found in REFERENCE.values() for r in found if r.key == key)
    path = submission / "tinyvae" / region.path
    text = path.read_text(encoding="utf-8")
    spans = scan(text.splitlines(keepends=True), region.path)
    index = [r.key for r in REFERENCE[region.path]].index(key)
    start, stop = spans[index]
    body = "".join(text.splitlines(keepends=True)[start + 1:stop])
    assert old in body, (key, old)
    replaced = body.replace(old, new).splitlines(keepends=True)
    path.write_text(replace_regions(text, spans, {index: replaced}, keep_markers=True), encoding="utf-8")
    return submission


@pytest.fixture
def release(student_release):
    return student_release


@pytest.fixture(scope="module")
def reference_report(sandboxed, tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "report.json"
    return grade(ROOT, report_path=path), path



def test_spec_and_source_agree():
    keys = {region.key for found in REFERENCE.values() for region in found}
    assert keys == ALL_KEYS | set(spec.WITHHELD) and set(spec.HINTS) == ALL_KEYS
    for required in ["nn/layers.py:Linear.forward", "nn/layers.py:Linear.backward", "nn/activations.py:ReLU.backward",
                     "nn/losses.py:bernoulli_nll", "nn/losses.py:gaussian_kl", "nn/reparam.py:Reparameterize.backward",
                     "models/vae.py:VAE.backward", "training/optim.py:Adam._update"]:
        assert required in keys
    for a in spec.ASSIGNMENTS:
        assert a.points("public") and a.points("hidden") and a.max_points() > 0


@pytest.mark.parametrize("assignment", spec.ASSIGNMENTS, ids=IDS)
def test_every_public_test_has_its_check_with_the_same_points(assignment):
    assert spec.read_points(assignment.test_file("public")) == assignment.points("public")
    names = [check.name for check in assignment.checks()]
    assert len(names) == len(set(names)) and all(check.cases for check in assignment.checks())


def test_reference_solution_scores_full_marks(reference_report):
    report, path = reference_report
    for a in report.assignments:
        assert a.status == "finished" and a.notes == []
        assert a.points == a.max_points > 0, [(t.name, t.message) for t in a.tests if t.outcome != "passed"]
    assert report.notes == [] and [a.id for a in report.assignments] == IDS
    assert report.max_points == 67
    saved = json.loads(path.read_text())
    assert saved["points"] == saved["max_points"] == report.max_points
    assert path.read_text().splitlines()[0].startswith('{"sandbox": "sandboxed: bubblewrap')
    assert report.table().splitlines()[0].startswith("sandboxed: bubblewrap")


def test_fresh_release_scores_zero_on_every_stub(sandboxed, release, tmp_path):
    result = python("-m", "tinyvae.assignments", "grade", str(release), "--report", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["points"] == 0 and report["max_points"] == sum(a.max_points() for a in spec.ASSIGNMENTS)
    for a in report["assignments"]:
        assert a["points"] == 0 and a["status"] == "finished"
        assert all(t["outcome"] == "failed" and "crashed: NotImplementedError" in t["message"] for t in a["tests"])
        assert f"0/{a['max_points']}" in result.stdout


def test_release_is_the_package_with_stubs_and_without_hidden_tests(release):
    package = release / "tinyvae"
    assert not list(package.rglob("checks.py")) and not list(package.rglob("__pycache__"))
    assert all((spec.PACKAGE / relative).exists() and not (package / relative).exists()
               for relative in spec.NOT_SHIPPED)                  # the fast twins are left out ...
    assert not {relative for relative in REFERENCE if relative in spec.NOT_SHIPPED}   # ... and hold no regions
    assert list(package.rglob("test_a*_public.py")) and (release / "README.md").exists()
    for relative, regions in REFERENCE.items():
        source = (spec.PACKAGE / relative).read_text(encoding="utf-8").splitlines()
        stubbed = (package / relative).read_text(encoding="utf-8").splitlines()
        spans = scan(stubbed, relative, (STUDENT_BEGIN,), (STUDENT_END,))
        assert len(spans) == len(regions)
        kept_source, kept_stubbed, s0, t0 = [], [], 0, 0
        for region, (start, stop) in zip(regions, spans, strict=True):
            kept_source += source[s0:region.start]
            kept_stubbed += stubbed[t0:start]
            s0, t0 = region.stop + 1, stop + 1
            stub = stubbed[start:stop + 1]
            assert all(line.startswith(region.indent) for line in stub)
            first_code = next(line for line in stub[1:] if not line.strip().startswith("#"))
            assert first_code == region.indent + "raise NotImplementedError("
            assert spec.label(region.key) in stub[0] and region.qualname in stub[0]
        assert kept_source + source[s0:] == kept_stubbed + stubbed[t0:], relative   # nothing else changed
    assert not any(line.strip().startswith(BEGIN) for path in package.rglob("*.py")
                   for line in path.read_text(encoding="utf-8").splitlines())
    assert find_leaks(package, REFERENCE) == []
    with pytest.raises(spec.SpecError, match="holds no solution regions"):
        collect_regions(package)                           # a release cannot be released or graded again
    assert "## What to write" in (package / "assignments" / "a1_layers" / "README.md").read_text(encoding="utf-8")


def top_level_imports(path):
    """The top-level modules a file imports when it is loaded (imports inside functions run only when called)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_the_release_installs_everything_its_package_and_tests_import(release):
    """README's one install command (pip install -r requirements.txt) brings every third-party module they import."""
    listed = {re.split(r"[<>=!~; \[]", line)[0].lower()
              for line in (release / "requirements.txt").read_text().splitlines() if line.strip()}
    distributions = importlib.metadata.packages_distributions()
    needed = {name for path in (release / "tinyvae").rglob("*.py") for name in top_level_imports(path)}
    third_party = needed - set(sys.stdlib_module_names) - {"tinyvae", "__future__"}
    assert {"numpy", "pytest", "tqdm"} <= third_party
    for module in third_party:
        assert {d.lower() for d in distributions.get(module, [module])} & listed, f"{module} is not installed by README"
    readme = (release / "README.md").read_text()
    assert "python -m pip install -r requirements.txt" in readme


def test_students_can_import_the_release_and_run_their_public_tests(release, tmp_path):
    result = python("-c", "import tinyvae, tinyvae.models.vae, tinyvae.training.optim; print(tinyvae.__file__)",
                    cwd=release)
    assert result.returncode == 0 and result.stdout.startswith(str(release)), result.stderr
    # the fused CPU Adam is not shipped, so the students' Adam._update is what runs
    result = python("-c", "from tinyvae import VAE; print(VAE().ops.name, VAE().ops.adam_update)", cwd=release)
    assert result.returncode == 0 and result.stdout.strip() == "reference None", result.stderr
    result = python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tinyvae/assignments/a1_layers", cwd=release)
    a1_tests = len(spec.get("A1").points("public"))
    assert result.returncode == 1 and f"{a1_tests} failed" in result.stdout and "NotImplementedError" in result.stdout
    solved = solve(copy_of(release, tmp_path), IDS)
    shutil.copy(release / "pytest.ini", solved)
    result = python("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=solved)
    public_tests = sum(len(a.points("public")) for a in spec.ASSIGNMENTS)
    assert result.returncode == 0 and f"{public_tests} passed" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("solved", IDS)
def test_one_solved_assignment_scores_exactly_its_points(sandboxed, release, tmp_path, solved):
    report = grade(solve(copy_of(release, tmp_path), [solved]))
    for a in report.assignments:
        assert a.points == (a.max_points if a.id == solved else 0), (a.id, a.notes)


# One plausible wrong solution per line: (assignment, what the student got wrong, region, old code, new code).
MUTATIONS = [
    ("A1", "Linear forward forgets the bias", "nn/layers.py:Linear.forward", "y += self.b", "pass"),
    ("A1", "db summed over the wrong axis", "nn/layers.py:Linear.backward", "sum(axis=0,", "sum(axis=1,"),
    ("A1", "dW accumulates instead of overwriting", "nn/layers.py:Linear.backward",
     "x.T.dot(dy, out=self.dW)", "self.dW += x.T @ dy"),
    ("A1", "ReLU backward forgets the mask", "nn/activations.py:ReLU.backward", "dy * self.mask", "dy"),
    ("A1", "ReLU slope 1 at the kink", "nn/activations.py:ReLU.forward", "x > 0", "x >= 0"),
    ("A2", "sign flip in the BCE gradient", "nn/losses.py:bernoulli_nll",
     "xp.exp(logits - relu - log1p_e) - x", "x - xp.exp(logits - relu - log1p_e)"),
    ("A2", "naive sigmoid that overflows", "nn/losses.py:bernoulli_nll",
     "xp.exp(logits - relu - log1p_e) - x", "1.0 / (1.0 + xp.exp(-logits)) - x"),
    ("A2", "KL gradient missing the ½", "nn/losses.py:gaussian_kl", "0.5 * (var - 1.0)", "(var - 1.0)"),
    ("A2", "KL summed over the batch axis", "nn/losses.py:gaussian_kl", "logvar).sum(axis=1)", "logvar).sum(axis=0)"),
    ("A3", "std = exp(logvar), no ½", "nn/reparam.py:Reparameterize.forward", "exp(0.5 * logvar)", "exp(logvar)"),
    ("A3", "reparameterization backward missing the ½", "nn/reparam.py:Reparameterize.backward", "0.5 * dz", "dz"),
    ("A3", "VAE backward forgets the KL weight β·w", "models/vae.py:VAE.backward", "self.kl_term_weight() / N",
     "1.0 / N"),
    ("A3", "VAE backward ignores the logvar clamp", "models/vae.py:VAE.backward", " * self._unclamped", ""),
    ("A3", "VAE backward sums instead of averaging", "models/vae.py:VAE.backward", "self._dout * (1.0 / N)",
     "self._dout"),
    ("A4", "no bias correction of the step", "training/optim.py:Adam.step",
     "self.lr * math.sqrt(1.0 - self.beta2 ** self.t) / (1.0 - self.beta1 ** self.t)", "self.lr"),
    ("A4", "second moment from |g| instead of g²", "training/optim.py:Adam._update", "xp.multiply(g, g, out=tmp)",
     "xp.abs(g, out=tmp)"),
    ("A4", "β₁ and β₂ mixed up in m", "training/optim.py:Adam._update", "tmp *= 1.0 - b1", "tmp *= 1.0 - b2"),
    ("A4", "step uphill (sign flip)", "training/optim.py:Adam._update", "theta -= tmp", "theta += tmp"),
    ("A5", "conv dW with its input channels reversed", "nn/conv.py:Conv2d.backward",
     "from_patch_order(dY.T @ self.cols, self.dW.shape)",
     "from_patch_order(dY.T @ self.cols, self.dW.shape)[:, ::-1]"),
    ("A5", "conv db accumulates instead of overwriting", "nn/conv.py:Conv2d.backward",
     "dy.sum(axis=(0, 2, 3), out=self.db)", "self.db += dy.sum(axis=(0, 2, 3))"),
    ("A5", "transposed convolution forgets the bias", "nn/conv.py:ConvTranspose2d.forward",
     "y += self.b[:, None, None]", "pass"),
    ("A5", "transposed convolution's dx through Wᵀ twice", "nn/conv.py:ConvTranspose2d.backward",
     "from_rows(D @ self.W_mat.T, N, H, W)", "from_rows(D @ self.W_mat.T * 2.0, N, H, W)"),
]


@pytest.fixture(scope="module")
def mutant_reports(sandboxed, tmp_path_factory):
    def grade_mutant(i):
        assignment, _, key, old, new = MUTATIONS[i]
        submission = edit_region(copy_of(ROOT, tmp_path_factory.mktemp(f"mutant{i}")), key, old, new)
        return grade(submission, [assignment], jobs=1).get(assignment)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return list(pool.map(grade_mutant, range(len(MUTATIONS))))


def test_every_assignment_has_mutations():
    assert {m[0] for m in MUTATIONS} == set(IDS)


@pytest.mark.parametrize("i", range(len(MUTATIONS)), ids=[m[1] for m in MUTATIONS])
def test_plausible_wrong_solution_loses_points(mutant_reports, i):
    result = mutant_reports[i]
    assert result.status == "finished" and result.notes == []
    assert result.points < result.max_points, f"no test caught: {MUTATIONS[i][1]}"


@pytest.mark.parametrize("source, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "bad.py:2: unbalanced markers: the BEGIN at line 2 is never"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "bad.py:3: unbalanced markers: the END at line 3 has no BEGIN"),
    ("def f():\n    ### BEGIN SOLUTION\n    x = 1\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
     "    ### END SOLUTION\n", "bad.py:4: nested markers: a BEGIN at line 4 lies inside the region opened at line 2"),
    ("### BEGIN SOLUTION\nX = 1\n### END SOLUTION\n", "bad.py:1: the region at lines 1-3 is not inside a function"),
])
def test_builder_refuses_malformed_markers(tmp_path, source, message):
    package = tmp_path / "src"
    package.mkdir()
    (package / "bad.py").write_text(source)
    with pytest.raises(MarkerError) as error:
        build(tmp_path / "out", source=package)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_builder_command_reports_bad_markers_in_one_line(tmp_path):
    package = tmp_path / "src"
    package.mkdir()
    (package / "bad.py").write_text("def f():\n    ### END SOLUTION\n")
    result = python("-m", "tinyvae.assignments", "build", str(tmp_path / "out"), "--source", str(package))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: bad.py:2: unbalanced markers: the END at line 2 has no BEGIN before it\n"


@pytest.mark.parametrize("args, message", [
    (["grade", "{tmp}/missing"], "error: {tmp}/missing is not a folder"),
    (["grade", "{tmp}", "--timeout", "-1"], "error: --timeout and --check-timeout must be positive numbers of seconds"),
    (["grade", "{tmp}", "--check-timeout", "nan"], "error: --timeout and --check-timeout must be positive numbers"),
    (["grade", "{tmp}", "--jobs", "0"], "error: --jobs must be at least 1, got 0"),
    (["grade", "{tmp}", "--only", "A9"], "error: unknown assignment 'A9': choose one of A1, A2, A3, A4, A5"),
    (["grade", "{tmp}", "--report", "{tmp}/no/such/r.json"], "error: --report {tmp}/no/such/r.json: the folder"),
    (["build", "{tmp}/file.txt"], "error: {tmp}/file.txt is a file, not a folder"),
    (["grade", "{tmp}", "--test"], "unrecognized arguments: --test"),
])
def test_assignment_commands_refuse_bad_input_in_one_line(tmp_path, args, message):
    (tmp_path / "file.txt").write_text("x")
    result = python("-m", "tinyvae.assignments", *[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2 and message.format(tmp=tmp_path) in result.stderr and result.stdout == ""
    assert "Traceback" not in result.stderr and (tmp_path / "file.txt").read_text() == "x"


def test_builder_refuses_a_region_that_belongs_to_no_assignment(tmp_path):
    package = tmp_path / "src"
    package.mkdir()
    (package / "extra.py").write_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n")
    with pytest.raises(spec.SpecError, match="extra.py:f belongs to no assignment"):
        build(tmp_path / "out", source=package)


def test_submission_that_does_not_import_gets_a_report(sandboxed, tmp_path):
    broken = copy_of(ROOT, tmp_path / "broken")
    with open(broken / "tinyvae" / "nn" / "layers.py", "a") as f:
        f.write("\nimport a_module_that_does_not_exist\n")
    report = grade(broken, report_path=tmp_path / "broken.json")
    assert json.loads((tmp_path / "broken.json").read_text())["points"] == report.points
    for a in report.assignments:                           # the checks that use Linear crash, the others pass
        assert all(t.outcome == "passed" or t.message.endswith("crashed: ModuleNotFoundError") for t in a.tests)
    assert all(a.points < a.max_points for a in report.assignments if a.id != "A2")

    typo = edit_region(copy_of(ROOT, tmp_path / "typo"), "nn/layers.py:Linear.forward", "y += self.b", "y += self.b)")
    report = grade(typo, ["A1", "A3"])                     # a syntax error in A1 costs A1 only
    assert report.get("A3").points == report.get("A3").max_points
    linear = [t for t in report.get("A1").tests if "linear" in t.name.lower() or "layer" in t.name or "MLP" in t.name]
    assert len(linear) == 6 and all(t.points == 0 and t.message.endswith("crashed: SyntaxError") for t in linear)

    empty = tmp_path / "empty"
    empty.mkdir()
    report = grade(empty, report_path=empty / "report.json")
    assert report.points == 0 and "no tinyvae package" in report.notes[0] and (empty / "report.json").exists()


LOOP = "import time\nwhile True:\n    try:\n        time.sleep(0.01)\n    except BaseException:\n        pass\n"


def test_submission_that_loops_forever_is_stopped_and_reported(sandboxed, tmp_path):
    endless = edit_region(copy_of(ROOT, tmp_path / "endless"), "nn/activations.py:ReLU.backward", "dx = dy * self.mask",
                          "while True:\n            pass")
    stubborn = edit_region(copy_of(ROOT, tmp_path / "stubborn"), "nn/activations.py:ReLU.backward",
                           "dx = dy * self.mask", LOOP.replace("\n", "\n        ").rstrip())
    with ThreadPoolExecutor(2) as pool:
        endless_report = pool.submit(grade, endless, ["A1"], check_timeout=0.3)
        stubborn_report = pool.submit(grade, stubborn, ["A1"], timeout=5, check_timeout=0.3,
                                      report_path=tmp_path / "stubborn.json")
        result, report = endless_report.result().get("A1"), stubborn_report.result()

    assert result.status == "finished" and 0 < result.points < result.max_points   # each looping case fails
    assert any(t.message == "timed out" for t in result.tests if t.outcome == "failed")

    result = report.get("A1")                               # this loop swallows the alarm: the worker is killed
    assert result.status == "time limit" and any("time limit of 5 s" in n for n in result.notes)
    assert 0 < result.points < result.max_points            # the checks that answered first still count
    assert any(t.outcome == "not run" for t in result.tests)
    assert json.loads((tmp_path / "stubborn.json").read_text())["assignments"][0]["status"] == "time limit"


def test_submission_that_edits_the_public_tests_gains_nothing(sandboxed, release, tmp_path):
    cheat = copy_of(release, tmp_path)
    public = cheat / "tinyvae" / "assignments" / "a2_likelihood_kl" / "test_a2_public.py"
    public.write_text("import pytest\n\n\n@pytest.mark.points(9)\ndef test_everything():\n    assert True\n")
    gradcheck = cheat / "tinyvae" / "nn" / "gradcheck.py"
    gradcheck.write_text(gradcheck.read_text() + "\n\ndef rel_error(a, b):\n    return 0.0\n")
    report = grade(cheat, ["A2"])
    assert report.points == 0 and report.max_points == spec.get("A2").max_points()
    assert [t.name for t in report.get("A2").tests if t.kind == "public"] == list(spec.get("A2").points("public"))


@pytest.mark.parametrize("step", ["copy_package", "isolate", "write_inputs"])
def test_a_grader_step_that_fails_scores_zero_with_a_note(sandboxed, monkeypatch, tmp_path, step):
    """The solved package, with one step of the grader's preparation broken: 0 points and a note, no crash."""
    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    target = grader.oracle if step == "write_inputs" else grader
    monkeypatch.setattr(target, step, broken)
    report = grade(ROOT, ["A2"], report_path=tmp_path / "report.json")
    result = report.get("A2")
    assert result.status == "grader error" and result.points == 0 and result.max_points > 0
    assert result.notes == ["the grader could not prepare this assignment (OSError): it scores 0; "
                            "grade it again, or grade it by hand"]
    assert all(t.outcome == "not run" and t.message.startswith("not run: the grader could not prepare")
               for t in result.tests)
    assert json.loads((tmp_path / "report.json").read_text())["points"] == 0
