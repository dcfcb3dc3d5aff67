"""Lifecycle: end-of-life plan, its service and its events."""
