"""SQL storage for contest: jobs, tags, events, reports and target locks.

The tables live in :mod:`contest.storage.schema`; :func:`open_storage` (in
:mod:`contest.storage.engine`) connects, migrates to the newest schema and returns a
:class:`~contest.storage.engine.Storage`.
"""
