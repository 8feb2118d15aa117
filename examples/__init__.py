"""Example programme files and a small chain, installed as ``loyalty_pilot.examples``."""
