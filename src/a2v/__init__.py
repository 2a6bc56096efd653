"""a2v: audio to visual. Speech and sound to pictures and video, five methods on one core."""

__version__ = "0.1.0"
