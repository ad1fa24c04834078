"""Running a grid: the run context, planning, source models, one cell, executors, the training loop, timing."""
