"""Reports: leaderboard aggregation and comparability checks, and its renderers (text, Markdown, CSV, HTML, plots)."""
