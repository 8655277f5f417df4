#!/usr/bin/env python3
"""A small git smart-HTTP server (clone, fetch and push) for tests and local demos.

Runs ``git http-backend`` as a CGI program per request, with optional HTTP basic auth:

    GIT_HTTP_PASSWORD=P scripts/git_http_server.py --root DIR [--host 127.0.0.1] [--port 0] [--user U]

The password comes from the environment, never the command line (which `ps` shows to every user
of the machine).

The first line on stdout is ``listening on <port>`` once the socket accepts connections, so a
caller that asked for port 0 can learn the port. Stdlib only: no Django, no third-party imports.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, BinaryIO
from urllib.parse import unquote, urlsplit

CHUNK = 64 * 1024


class GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Clients retry quickly on refused connections; a deeper backlog avoids spurious failures
    # when many tests clone at once.
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        root: str,
        user: str | None,
        password: str | None,
        git: str,
        quiet: bool,
    ) -> None:
        super().__init__(address, GitRequestHandler)
        self.root = os.path.abspath(root)
        self.user = user
        self.password = password
        self.git = git
        self.quiet = quiet


class GitRequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so git can keep the connection alive; every response therefore carries either a
    # Content-Length or chunked framing.
    protocol_version = "HTTP/1.1"
    server: GitHTTPServer
    server_version = "workflows-git-http/1"

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    # -- auth ---------------------------------------------------------------------------------

    def _authenticated_user(self) -> str | None:
        """The user name when the request may proceed, or None after a 401 has been sent."""
        srv = self.server
        if srv.user is None:
            return ""
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            # Constant-time comparison: tests should not teach the product timing-unsafe habits.
            user_ok = hmac.compare_digest(user.encode(), srv.user.encode())
            password_ok = hmac.compare_digest(password.encode(), (srv.password or "").encode())
            if user_ok and password_ok:
                return user
        self._discard_body()
        body = b"Authentication required\n"
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return None

    def _discard_body(self) -> None:
        # The body must be consumed or the connection closed, else the next request on this
        # keep-alive connection would be parsed out of the unread body.
        length = self.headers.get("Content-Length")
        if length is not None and int(length) <= 1024 * 1024:
            remaining = int(length)
            while remaining > 0:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
        elif length is not None or self._is_chunked():
            self.close_connection = True

    def _is_chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    # -- CGI ----------------------------------------------------------------------------------

    def _handle(self) -> None:
        user = self._authenticated_user()
        if user is None:
            return
        url = urlsplit(self.path)
        path_info = unquote(url.path)
        if ".." in path_info.split("/"):
            self.send_error(HTTPStatus.FORBIDDEN, "path traversal")
            return
        env = self._cgi_env(path_info, url.query, user)
        proc = subprocess.Popen(
            [self.server.git, "http-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        stderr_lines: list[bytes] = []
        # stdin, stdout and stderr are pumped concurrently: a backend that writes while we are
        # still writing its input (or fills the stderr pipe) would otherwise deadlock.
        feeder = threading.Thread(target=self._feed_body, args=(proc.stdin,), daemon=True)
        drainer = threading.Thread(
            target=lambda: stderr_lines.extend(proc.stderr or []), daemon=True
        )
        feeder.start()
        drainer.start()
        try:
            self._relay_response(proc.stdout)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            proc.kill()
        finally:
            proc.stdout.close()
            rc = proc.wait()
            feeder.join(timeout=5)
            drainer.join(timeout=5)
            if stderr_lines and not self.server.quiet:
                sys.stderr.write(b"".join(stderr_lines).decode("utf-8", "replace"))
            if rc != 0 and not self.server.quiet:
                sys.stderr.write(f"git http-backend exited {rc} for {self.command} {self.path}\n")

    def _cgi_env(self, path_info: str, query: str, user: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "HTTP_", "CONTENT_"))
        }
        env.update(
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL=self.request_version,
            SERVER_SOFTWARE=self.server_version,
            SERVER_NAME=str(self.server.server_address[0]),
            SERVER_PORT=str(self.server.server_address[1]),
            REQUEST_METHOD=self.command,
            PATH_INFO=path_info,
            QUERY_STRING=query,
            REMOTE_ADDR=self.client_address[0],
            GIT_PROJECT_ROOT=self.server.root,
            GIT_HTTP_EXPORT_ALL="1",
            # Anonymous servers would otherwise refuse pushes; with auth http-backend enables
            # receive-pack by itself once REMOTE_USER is set.
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.receivepack",
            GIT_CONFIG_VALUE_0="true",
        )
        if user:
            env["REMOTE_USER"] = user
            env["AUTH_TYPE"] = "Basic"
        if ctype := self.headers.get("Content-Type"):
            env["CONTENT_TYPE"] = ctype
        # Left unset for chunked bodies: http-backend then reads stdin to EOF.
        if (length := self.headers.get("Content-Length")) is not None:
            env["CONTENT_LENGTH"] = length
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding
        if protocol := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = protocol
        return env

    def _feed_body(self, stdin: IO[bytes]) -> None:
        try:
            if self._is_chunked():
                for piece in self._read_chunked():
                    stdin.write(piece)
            elif (length := self.headers.get("Content-Length")) is not None:
                remaining = int(length)
                while remaining > 0:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        break
                    stdin.write(data)
                    remaining -= len(data)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self.close_connection = True
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()

    def _read_chunked(self) -> Iterator[bytes]:
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Trailer headers until the empty line.
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            remaining = size
            while remaining > 0:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    return
                yield data
                remaining -= len(data)
            self.rfile.readline(3)  # CRLF after each chunk

    def _relay_response(self, stdout: BinaryIO) -> None:
        status = HTTPStatus.OK.value
        reason: str | None = None
        headers: list[tuple[str, str]] = []
        while True:
            line = stdout.readline(65537)
            if not line or line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            value = value.strip()
            if name.lower() == "status":
                code, _, text = value.partition(" ")
                status, reason = int(code), text or None
            else:
                headers.append((name, value))
        self.send_response(status, reason)
        has_length = False
        for name, value in headers:
            if name.lower() == "content-length":
                has_length = True
            self.send_header(name, value)
        chunked = not has_length and self.command != "HEAD"
        if chunked:
            # Packs can be large and http-backend does not know their size up front: stream them.
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        while True:
            data = stdout.read1(CHUNK) if hasattr(stdout, "read1") else stdout.read(CHUNK)
            if not data:
                break
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="directory holding the bare repositories")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--user", help="require HTTP basic auth with this user (password: $GIT_HTTP_PASSWORD)"
    )
    parser.add_argument("--quiet", action="store_true", help="no request log on stderr")
    args = parser.parse_args(argv)
    password = os.environ.get("GIT_HTTP_PASSWORD")
    if args.user is not None and not password:
        parser.error("--user needs its password in the environment variable GIT_HTTP_PASSWORD")
    if not os.path.isdir(args.root):
        parser.error(f"--root {args.root!r} is not a directory")
    git = shutil.which("git")
    if git is None:
        parser.error("git is not installed")

    server = GitHTTPServer((args.host, args.port), args.root, args.user, password, git, args.quiet)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
