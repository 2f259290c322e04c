"""
Moved to L{txpulse.plugin.tap} and L{txpulse.plugin.shutdown}; this path keeps
working (named by twistd dropin caches of older installs).
"""

from __future__ import annotations

from .plugin.shutdown import (
    GracefulShutdown,
)
from .plugin.tap import (
    Options,
    buildMetricsRoot,
    buildRoot,
    makeBroker,
    makeLimiter,
    makeService,
    metricsResource,
    siteOptions,
    withBacklog,
)

__all__ = ["Options", "makeService", "buildRoot", "siteOptions", "withBacklog", "makeBroker", "makeLimiter", "metricsResource", "buildMetricsRoot", "GracefulShutdown"]
