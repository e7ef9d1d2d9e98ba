"""Assignment a4_adam_training: its README, public tests (shipped to students) and hidden tests (kept for grading)."""
