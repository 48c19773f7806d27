"""The thin Dagster layer: config, resources, assets, the YAML component."""
