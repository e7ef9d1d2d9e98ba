"""Course assignments: one source with the solutions inside, a generated student release,
and an autograder.

    python -m tinyvae.assignments list                  the assignments, their regions and points
    python -m tinyvae.assignments build OUTDIR          write the student release
    python -m tinyvae.assignments grade SUBMISSION_DIR  grade a student's copy, print a table, write JSON

    markers.py    find, check and stub the solution regions (nbgrader's markers)
    spec.py       the assignments: their regions, hints, checks and points
    build.py      the student release
    grade.py      the grader: copy, isolate, run the worker, judge, score
    oracle.py     checks and cases: inputs, expected outputs from the reference, judging answers as data
    probes.py     how a case calls the students' functions (in the worker, and on the reference)
    worker.py     the only process that runs student code: answers with .npz data
    sandbox.py    bubblewrap: what the worker sees, its limits, killing it
    report.py     the score table and the JSON report
    conftest.py   the pytest side of the public tests: the points mark, fixtures
    a1_layers/ ... a4_adam_training/   README.md, test_aN_public.py, checks.py (the grader's, kept)

The instructor guide is docs/instructor-guide.md.
"""
