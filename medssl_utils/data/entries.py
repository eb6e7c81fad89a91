"""Importing this module registers every dataset: the real ones and the MedSynth stand-ins."""
from . import medsynth  # noqa: F401
from . import real  # noqa: F401
