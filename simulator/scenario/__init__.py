"""Scenario files: one typed dataclass per YAML section, loaded and validated in one place.

    config  the dataclasses (one per YAML section) and their defaults
    limits  how large or small each value may be, and why
    load    load_scenario: read, type, check every value, load and check every profile
"""
