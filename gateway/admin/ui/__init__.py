"""The operator's dashboard at `/ui` on the admin listener: server-rendered pages over `Control`
(overview, subscription, event, dead letters, config), live updates with htmx, plots as inline
SVG, all shipped in the package (no CDN)."""

from gateway.admin.ui.site import PREFIX, install, owns

__all__ = ["PREFIX", "install", "owns"]
