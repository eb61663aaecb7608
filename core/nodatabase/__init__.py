"""The database backend of a process that has none (see ``base``)."""
