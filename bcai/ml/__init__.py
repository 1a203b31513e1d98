"""bcai.ml: the ML layer — datasets shipped inside packages (no downloads),
and training loops that run VM programs.

Layer: compute.
"""
