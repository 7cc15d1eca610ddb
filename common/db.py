"""Database helpers shared by the API's hot paths."""

from django.db import DEFAULT_DB_ALIAS, connections


def prepared_cursor(conn=None):
    """Return a cursor whose statements psycopg prepares, on PostgreSQL; else a plain one.

    Django's cursors bind parameters client-side, which psycopg never prepares. This one binds
    server-side, so after ``prepare_threshold`` runs (config/settings.py) a statement skips
    parsing and planning on that connection. For fixed statements run on every request only.
    ``conn`` is the default database's wrapper, for callers that already hold it (each access
    through ``django.db.connection`` is a context-local lookup).
    """
    conn = conn or connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        return conn.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    # What connection.cursor() does, with another cursor class; the wrapper keeps the query
    # visible to Django's query logging and assertNumQueries.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        return conn._prepare_cursor(ServerBindingCursor(conn.connection))
