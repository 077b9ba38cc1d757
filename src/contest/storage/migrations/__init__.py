"""Alembic environment and revisions of contest's SQL schema (one linear history).

Run by :func:`contest.storage.migrate.upgrade` at server start; no ``alembic.ini`` is needed.
Developers add a revision with ``alembic -x ... revision`` against a config whose
``script_location`` points here, then name the file ``NNNN_what.py`` with ``revision = "NNNN"``
and ``down_revision`` the previous number (the numbers are the storage ``version()``).
"""

#: the table where Alembic records the applied revision
VERSION_TABLE = "contest_schema_version"
