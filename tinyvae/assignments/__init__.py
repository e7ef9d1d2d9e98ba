"""Course assignments: one source with the solutions inside, a generated student release,
and an autograder.

    python -m tinyvae.assignments list                  the assignments, their regions and points
    python -m tinyvae.assignments build OUTDIR          write the student release
    python -m tinyvae.assignments grade SUBMISSION_DIR  grade a student's copy, print a table, write JSON

    markers.py    find, check and stub the solution regions (nbgrader's markers)
    spec.py       the assignments: their regions, hints, tests and points
    build.py      the student release
    grade.py      the grader: fresh subprocesses, time limits, the instructor's own tests
    report.py     the score table and the JSON report
    conftest.py   the pytest side: the points mark, fixtures, the grader's log and time limit
    a1_layers/ ... a4_adam_training/   README.md, test_aN_public.py, test_aN_hidden.py

The instructor guide is docs/instructor-guide.md.
"""
