"""The sync engine between source and sink: plain Python, testable without Dagster."""
