"""The Flask application factory (``cctv_monitor.create_app``)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from cctv_monitor import config as config_module
from cctv_monitor import db, instance

__all__ = ["create_app"]

LOGGER = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None, *, migrate: bool = True) -> Flask:
    """Build the application: defaults, instance config, environment, then ``test_config``."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("CCTV_INSTANCE_PATH") or None
    # Named after the package, so Flask finds its templates and static files there.
    app = Flask("cctv_monitor", instance_relative_config=True, instance_path=instance_path)
    base = config_module.TestConfig if test_config and test_config.get("TESTING") else config_module.Config
    app.config.from_object(base)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_envvar("CCTV_CONFIG_FILE", silent=True)
        app.config.update(config_module.from_environment())
    else:
        app.config.update(config_module.from_environment())
        app.config.update(test_config)
    config_module.validate(app.config)
    instance.secure_folder(app.instance_path)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app)

    database = db.init_app(app)
    if migrate:
        from cctv_monitor.migrate import upgrade

        upgrade(database.engine)

    _register_extensions(app)
    return app


def _instance_secret(app: Flask) -> str:
    """Flask secret kept in the instance folder so sessions survive restarts."""
    path = Path(app.instance_path) / "secret_key"
    return instance.read_or_create(path, lambda: secrets.token_hex(32).encode("ascii")).decode("ascii")


def _register_extensions(app: Flask) -> None:
    """Hook in optional parts (dashboard, API, scheduler) that live in their own modules."""
    try:
        from dashboards import init_app as init_dashboards
    except ImportError:  # dashboards not built yet
        return
    init_dashboards(app)
