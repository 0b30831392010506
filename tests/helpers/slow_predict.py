"""Run a predict slowly (a pause after each chunk) so a test can SIGKILL it partway.

Usage: python slow_predict.py INPUT MODEL.json HEAD.npz OUTPUT CHUNK_SIZE PAUSE_SECONDS
"""

from __future__ import annotations

import sys

from slow_transform import Pause

from rocketstream.api.predict import predict

if __name__ == "__main__":
    src, model, head, out, chunk, pause = sys.argv[1:7]
    with Pause(float(pause)):
        predict(src, model, head, out, chunk_size=int(chunk), scheduler="synchronous")
