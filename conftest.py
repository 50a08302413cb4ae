"""Test-session setup shared by the unit tests and nbval.

Environment variables set here are inherited by the notebook kernels nbval starts, so every notebook runs
under the smoke profile, offline, with a non-interactive matplotlib backend.
"""
import os
import tempfile

os.environ["WORKBENCH_PROFILE"] = "smoke"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "workbench-numba-cache"))
