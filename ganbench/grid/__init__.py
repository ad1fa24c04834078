"""What to run: the grid (defaults, TOML, command-line options) and its cells, each with a stable id."""
