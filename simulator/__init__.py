"""loyalty_pilot.simulator: economics of a programme."""
