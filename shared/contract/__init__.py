"""The build-request contract v1: model, readers, rules and version policies."""
