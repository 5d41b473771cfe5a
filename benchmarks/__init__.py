"""Benchmarks of fairjax against its peers (``python -m benchmarks``; see ``README.md`` here)."""
