"""Assignment a2_likelihood_kl: README, public tests (shipped), the grader's checks.py (kept by the instructor)."""
