"""Database plumbing: engines for SQLite and PostgreSQL, and Alembic migrations run from code.

`forewarn db upgrade` and every worker start run ``upgrade(url)``: migrations are
idempotent, so a worker always finds the schema it was built for (and a schema newer
than the code is refused with a clear message rather than written to blindly).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from stream.errors import DatabaseError

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, echo: bool = False) -> Engine:
    """An engine for the URL; SQLite gets WAL and a busy timeout so readers never block the writer."""
    parsed = make_url(url)
    options: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        options["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **options)
    except (SQLAlchemyError, ImportError) as exc:
        raise DatabaseError(f"cannot use database {parsed.render_as_string(hide_password=True)}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "stream/migrations has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, engine: Engine | None = None) -> str:
    """Bring the schema to the newest migration; returns the revision it is at."""
    own = engine is None
    engine = engine or make_engine(url)
    try:
        known = {s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
        current = current_revision(engine)
        if current is not None and current not in known:
            raise DatabaseError(
                f"the database schema is at revision {current}, which this Forewarn does not know "
                "(it was upgraded by a newer version): upgrade Forewarn, or point database.url elsewhere"
            )
        with engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        return head_revision()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot migrate {make_url(url).render_as_string(hide_password=True)}: {exc}") from exc
    finally:
        if own:
            engine.dispose()
