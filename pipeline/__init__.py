"""The product's pipeline: cameras -> detector -> tracker -> alert sinks, built from one YAML config."""
from pipeline.config import PipelineConfig, load_config
from pipeline.graph import Pipeline

__all__ = ["Pipeline", "PipelineConfig", "load_config"]
