"""The `xinyong` command line. `common` holds the app; each room adds the commands of its stage."""

from xinyong.cli import intake, resolution, lists, screening, publication, accountability, operations  # noqa: F401  (importing a room registers its commands)
from xinyong.cli.common import app, run

__all__ = ["app", "run"]
