"""Recordings: call recording, encrypted storage, retention, audited access, transcription.

Pure parts so far: ``recordings.crypto`` (the encrypted-at-rest file format: chunked AES-GCM
with key ids and rotation) and ``recordings.retention`` (which stored items have expired).
"""
