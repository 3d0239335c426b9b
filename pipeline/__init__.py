"""The product's pipeline: cameras -> detector -> tracker -> alert sinks, built from one YAML config.

`python -m pipeline run CONFIG`; in code: `Pipeline(load_config(path)).run()` (`pipeline.graph`, `pipeline.config`).
"""
