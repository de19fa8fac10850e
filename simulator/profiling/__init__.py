"""Per-layer device profiles: the format, measuring one, and deriving one from a datasheet.

    schema        Profile, LayerProfile, ExitProfile: the JSON file format (README, "Profile format")
    measure       `simulate profile`: FLOPs, bytes and timings of every block and early exit
    memory_probe  saved activations and backward peak memory of each block (the memory model's inputs)
    derive        roofline estimates for a device we cannot measure (datasheets.json beside it)

`schema` is plain Python (the cost model reads it); `measure` and `memory_probe` need torch.
"""
