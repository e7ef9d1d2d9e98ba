"""Assignment a1_layers: README, public tests (shipped), the grader's checks.py (kept by the instructor)."""
