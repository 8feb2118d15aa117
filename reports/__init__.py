"""loyalty_pilot.reports package."""
