"""What every package shares, with no torch, SimPy or pandas in it.

    errors  UserError: bad input, printed as one line with exit status 2
    files   writing outputs whole or not at all (atomic_file, atomic_write_text/_bytes), check_writable
    typed   loading YAML and JSON into typed dataclasses, rejecting unknown keys and wrong types
    names   method names, SimPy resource and stage names
    text    number formatting for terminals and reports (durations, reductions, bytes, rates)
"""
