"""Grouping images into "patients" with two views: chest frontal/lateral and fundus right/left eye."""
from __future__ import annotations

import numpy as np


def assign_views(labels: np.ndarray, pair_fraction: float) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Give each image a patient and a view (0 or 1); ``pair_fraction`` of each class comes as two-view pairs.

    Both views of a patient carry the patient's label, so class counts stay exactly as requested.
    Returns (patient index per image, view per image, index pairs (view 0, view 1)).
    """
    n = len(labels)
    patient = np.empty(n, np.int64)
    view = np.zeros(n, np.int64)
    pairs: list[tuple[int, int]] = []
    next_patient = 0
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)  # labels are already shuffled, so this is a random grouping
        n_pairs = int(np.floor(pair_fraction * len(members) / 2))
        for j in range(n_pairs):
            a, b = members[2 * j], members[2 * j + 1]
            patient[a] = patient[b] = next_patient
            view[b] = 1
            pairs.append((int(a), int(b)))
            next_patient += 1
        for a in members[2 * n_pairs:]:
            patient[a] = next_patient
            next_patient += 1
    pairs.sort()
    return patient, view, pairs


def patient_labels(patient: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The label of each patient (both views of a patient share it): what the renderers draw findings from."""
    plabel = np.empty(int(patient.max()) + 1, np.int64)
    plabel[patient] = labels
    return plabel
