"""Fleets: many edge devices training with one cloud (README, "Fleets")."""
