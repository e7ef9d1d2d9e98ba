"""Assignment a3_reparam_vae: its README, public tests (shipped to students) and hidden tests (kept for grading)."""
