"""Running a suite: the matrix, the rig per cell, the run folder and what it measures."""
