"""Used by every feature and knowing none of them: errors, settings, redaction, messaging, ids,
URLs, documents.
"""
