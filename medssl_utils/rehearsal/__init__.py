"""The dress rehearsal of the real path: fabricated publisher-layout data and random original checkpoints."""
