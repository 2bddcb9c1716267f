"""The studio: a local web page to edit a config, preview its first frame, render it while
watching each frame appear, and browse, compare and download past renders.

`work.Studio` does the work (one render at a time, in one renders folder), `app.create_app`
serves it over HTTP (Starlette), `form.describe` turns the parameters' declarations into the
page's form. Starlette and uvicorn are imported only here: `pip install "deepdream-animator[studio]"`.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from pathlib import Path

from animator.settings.errors import UserError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost: addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8765, plugins: list[str] = (),
          announce: Callable[[str, str | None], None] = lambda url, warning: None) -> None:
    """Serve the studio over `folder` until interrupted. Plugins come from here only (the command
    line). Off loopback, a token is required: `announce(url, warning)` receives the URL to open
    (with the token) and a warning to show, before the server starts."""
    try:
        import uvicorn

        from animator.studio.app import create_app
    except ImportError as error:
        raise UserError(f"the studio needs {error.name}: pip install 'deepdream-animator[studio]'") from None
    import transforms
    from animator.studio.work import Studio

    transforms.load_plugins(list(plugins), Path.cwd())
    studio = Studio(folder)
    loopback = is_loopback(host)
    token = None if loopback else secrets.token_urlsafe(18)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    warning = None if loopback else (
        f"serving on {host}, reachable from other machines: anyone with the URL (its token) can "
        f"render and read '{studio.root}'")
    announce(url, warning)
    uvicorn.run(create_app(studio, token, loopback), host=host, port=port, log_level="warning")
