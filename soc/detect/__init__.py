"""Stateful detection: Numba kernels over NumPy arrays (sliding windows, distinct counts, ...) shared by the
Sigma correlation rules and the detectors."""
