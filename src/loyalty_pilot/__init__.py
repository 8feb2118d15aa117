"""loyalty-pilot: simulate, pilot and evaluate a retail loyalty programme before rolling it out.

The four components install as sub-packages:

- ``loyalty_pilot.simulator``   economics of a programme (RFM scoring, later replay and projection)
- ``loyalty_pilot.experiments`` pure statistics on panels
- ``loyalty_pilot.reports``     presentation of the decision document
- ``loyalty_pilot.pilots``      the user's workflow: workspace, ingest, synthetic chain, CLI
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
