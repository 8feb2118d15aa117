"""``python -m loyalty_pilot`` runs the command line."""

from loyalty_pilot.pilots.cli import main

if __name__ == "__main__":
    main()
