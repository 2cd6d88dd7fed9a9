"""The face of the connector: CLI (`intercom-sync`), pipeline wiring, demo and run summary."""
