"""Thin trigger handlers: parse the trigger, call one service in ``shared``, map errors."""
