"""The Faust wiring: app, topics, agents. Thin on purpose: decode, validate, call the domain, emit."""
