"""Intake: VHD uploads and snapshots turned into build requests."""
