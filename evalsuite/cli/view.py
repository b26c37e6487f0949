"""`evalsuite view`: serve the reports folder on localhost, with an index of every report."""

from __future__ import annotations

import functools
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import typer


class ReportHandler(SimpleHTTPRequestHandler):
    """Static files of the reports folder; `/` and `/index.html` list the reports (from sidecars)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        if self.path.split("?", 1)[0] in ("/", "/index.html"):
            from evalsuite.report.index import render_index

            body = render_index(Path(self.directory)).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def list_directory(self, path):  # no folder listings beyond the index
        self.send_error(404, "not found")
        return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # quiet by default
        pass


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server for `folder` (port 0: any free port; see `server.server_address`)."""
    handler = functools.partial(ReportHandler, directory=str(Path(folder).resolve()))
    cls = type("Server", (ThreadingHTTPServer,), {"daemon_threads": True, "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    return cls((host, port), handler)


def view(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file (for its reports folder)."),
    folder: Optional[Path] = typer.Option(None, "--dir", help="Reports folder to serve (default: the config's output.reports)."),
    port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="Port (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
    open_: bool = typer.Option(False, "--open", help="Open the index in a web browser."),
) -> None:
    """Serve the reports folder over HTTP, with an index page listing every report.

    Examples:

      evalsuite view --config examples/demo.yaml --open

      evalsuite view --dir reports --port 9000
    """
    from evalsuite.errors import UserError

    if folder is None:
        from evalsuite.config import load_experiment

        folder = Path(load_experiment(config).output.reports)
    if Path(folder).exists() and not Path(folder).is_dir():
        raise UserError(f"reports folder {folder} is a file, not a folder")
    if not Path(folder).is_dir():
        raise UserError(f"reports folder {folder} does not exist (run `evalsuite report` first)")
    try:
        server = make_server(Path(folder), host, port)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    url = f"http://{server.server_address[0]}:{server.server_address[1]}/"
    typer.echo(f"serving {folder} at {url} (Ctrl-C to stop)")
    if open_:
        import webbrowser

        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
