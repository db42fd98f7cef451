"""Data that comes with fastnn; read it through ``fastnn.datasets``.

``digits.npz`` is the handwritten-digits data set as shipped with scikit-learn
(BSD 3-Clause license), stored as uint8 arrays ``X`` (1797, 64) and ``y`` (1797,).
See ``README.md`` in this folder for how it was made.
"""
