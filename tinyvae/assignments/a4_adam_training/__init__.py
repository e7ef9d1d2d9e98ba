"""Assignment a4_adam_training: README, public tests (shipped), the grader's checks.py (kept by the instructor)."""
