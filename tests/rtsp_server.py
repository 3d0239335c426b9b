"""Serve an H.264 MP4 over RTSP (GStreamer RTSP server) for tests: rtsp://127.0.0.1:PORT/cam1.

Run with the system python that has `gi` (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0):
    /usr/bin/python3 tests/rtsp_server.py video.mp4 --port 8554 [--loop]
Each client gets the file from its start, paced in real time. Prints "ready PORT" once listening.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("video")
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--path", default="/cam1")
    args = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{args.video}" ! qtdemux ! h264parse config-interval=-1 '
                       f'! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"error: cannot listen on port {args.port}", flush=True)
        return 1
    print(f"ready {args.port}", flush=True)
    try:
        GLib.MainLoop().run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
