"""Assignment a2_likelihood_kl: its README, public tests (shipped to students) and hidden tests (kept for grading)."""
