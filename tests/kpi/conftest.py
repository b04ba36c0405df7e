from hotline.db.pytest_fixtures import db, pg_database  # noqa: F401
