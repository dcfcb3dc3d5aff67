"""The local Azure: counterparts of every Azure service the app uses. Never deployed."""
