"""Plugins: hook specs, the manager that loads them, the registry of names and options, the contracts they implement, the block helpers strategies use, the scaffold."""
