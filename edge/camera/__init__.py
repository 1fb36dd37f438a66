"""Photos on the node: the privacy pipeline (``pipeline``) and the node camera
(``capture``). Every photo, uploaded or captured, goes through
``pipeline.process`` before anything is queued."""

from .capture import CaptureError, capture_frame
from .pipeline import (LONG_SIDE, MAX_BYTES, MAX_PIXELS, QUALITY, PhotoRejected, SafePhoto,
                       process, process_file)

__all__ = ["CaptureError", "capture_frame", "LONG_SIDE", "MAX_BYTES", "MAX_PIXELS", "QUALITY",
           "PhotoRejected", "SafePhoto", "process", "process_file"]
