"""Link capacity over time: measured traces (`traces`), outage windows (`outages`) and the
exact transfer-end rule that both the simulation and the emulation follow (`capacity`)."""
