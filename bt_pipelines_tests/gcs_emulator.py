"""Run gcp-storage-emulator on a port, serving requests concurrently.

Its stock server handles one request at a time, and ranged reads of objects over ~2 MB
then hang; a threading server fixes that.
"""

import http.server
import sys

http.server.HTTPServer = http.server.ThreadingHTTPServer  # before the emulator imports it

from gcp_storage_emulator.server import create_server  # noqa: E402

if __name__ == "__main__":
    create_server("127.0.0.1", int(sys.argv[1]), in_memory=True).run()
