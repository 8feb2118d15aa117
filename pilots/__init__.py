"""loyalty_pilot.pilots: the user's workflow (workspace, ingest, synthetic chain, CLI)."""
