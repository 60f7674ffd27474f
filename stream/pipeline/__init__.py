"""The Faust wiring: app, topics, agents. Thin: decode, validate, call the domain, emit."""
