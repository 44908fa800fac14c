"""CLI command modules. Each module defines ``register(group)`` adding its commands to ``cctv-monitor``.

Commands that need the database use the group's default app context; protocol-only commands (probe,
discover, simulate) are registered with ``with_appcontext=False`` so they run without a database.
"""
