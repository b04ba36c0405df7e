"""Recordings: call recording, encrypted storage, retention, audited access, transcription.

- ``crypto`` — the encrypted-at-rest file format (chunked AES-GCM, key ids, rotation);
- ``retention`` — which stored items have expired (pure);
- ``models`` — tables: recordings, transcript segments, access audit;
- ``store`` — keys in the runtime secrets, encrypt-and-record, purge;
- ``access`` / ``http`` — audited reads and the HTTP API;
- ``audiosocket`` — the AudioSocket protocol and the server externalMedia connects to;
- ``tap`` — snoop + externalMedia + bridge over ARI for one party;
- ``stt`` — the Vosk recogniser worker processes and their streams;
- ``service`` — ``RecordingService``: what the call path calls (live or post-call, never none);
- ``models_fetch`` — ``hotline models fetch zh``.
"""
