"""Benchmarks of chainrule against a plain NumPy loop and PyTorch: `python -m benchmarks`."""
