"""ARM Compute Gallery simulator with a managed-identity endpoint (devstack; never deployed).

Run ``python -m devstack.armsim --port PORT [--speed S] [--data DIR]``; see docs/devstack.md.
"""
