"""Dialects translate: one folder per provider API, each turning its wire format into the
canonical JobSpec and rendering Jobs in its own words. Nothing below knows which was used."""
