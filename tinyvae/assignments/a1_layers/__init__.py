"""Assignment a1_layers: its README, public tests (shipped to students) and hidden tests (kept for grading)."""
