"""Gallery Pipeline domain and adapters.

Domain modules talk to ports (``typing.Protocol``); only modules under ``shared.adapters``
import Azure SDKs.
"""
