"""Assignment a3_reparam_vae: README, public tests (shipped), the grader's checks.py (kept by the instructor)."""
