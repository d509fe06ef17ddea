"""Gaussian expectations of φ: compiled moments, Hermite rules and adaptive quadrature."""
