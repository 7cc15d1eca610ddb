"""Database helpers shared by the API's hot paths."""

from django.db import connection


def prepared_cursor():
    """Return a cursor whose statements psycopg prepares, on PostgreSQL; else a plain one.

    Django's cursors bind parameters client-side, which psycopg never prepares. This one binds
    server-side, so after ``prepare_threshold`` runs (config/settings.py) a statement skips
    parsing and planning on that connection. For fixed statements run on every request only.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    # What connection.cursor() does, with another cursor class; the wrapper keeps the query
    # visible to Django's query logging and assertNumQueries.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))
