"""A real HTTP server on 127.0.0.1 (or the address given) serving a directory
(a thread in the test process), for catalog, bundle and release downloads."""
import functools
import http.server
import threading


class Server:
    def __init__(self, root, host="127.0.0.1"):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer((host, 0), handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
