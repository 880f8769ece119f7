"""The nginx proxy in front of stage services, configured from service labels.

``render``   labelled services → nginx.conf text (pure)
``discover`` the Docker engine → labelled services
``sync``     keeps the proxy service's config in step with the swarm (``ProxySync``)
"""

from .render import LABEL_PREFIX, ProxyRoute, config_hash, render, routes_from_services

__all__ = ["LABEL_PREFIX", "ProxyRoute", "config_hash", "render", "routes_from_services"]
