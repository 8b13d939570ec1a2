"""Everything the DevOps Metrics Lambda functions need at run time."""
from __future__ import annotations

__version__ = "0.2.0"
