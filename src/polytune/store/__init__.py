"""The store remembers: SQLAlchemy tables and repositories, and blob storage through fsspec."""
