"""loyalty_pilot.experiments package."""
