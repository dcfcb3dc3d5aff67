"""The build-request contract v1: model, readers, rules and version policies.

Modules, from the bottom up (each imports only those above it in this list):

- :mod:`~shared.contract.display`: how values are quoted in messages (code points for anything
  outside printable ASCII).
- :mod:`~shared.contract.rules`, :mod:`~shared.contract.versioning`: rule names, limits, small
  pure rule functions; version policies. :mod:`~shared.contract.naming`: Azure's naming rules,
  one per kind of name, with their sources.
- :mod:`~shared.contract.model`: the frozen dataclasses (:class:`BuildRequest` and its parts),
  defaults and the derived request id.
- :mod:`~shared.contract.reader`: :class:`DocumentReader`, the generic JSON reader that records
  every problem.
- :mod:`~shared.contract.decode`: :func:`decode_document`, the one way from outside bytes to a
  JSON object (or a ``ValidationFailed`` saying why not).
- :mod:`~shared.contract.target`, :mod:`~shared.contract.source`,
  :mod:`~shared.contract.publishing`, :mod:`~shared.contract.definition_spec`,
  :mod:`~shared.contract.tags`: one reader per section of a request.
- :mod:`~shared.contract.parse`: :func:`parse_build_request` and the rules that span sections.

Domain code only: no Azure SDK import.
"""
