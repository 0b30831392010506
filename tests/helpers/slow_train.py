"""Run ``rocketstream train --head softmax`` slowly (a pause after each minibatch) so a test can SIGKILL
it mid-epoch. The pause wraps the real loader; nothing else changes.

Usage: python slow_train.py PAUSE_SECONDS -- ARGS...   (ARGS: the `rocketstream train` arguments)
"""

from __future__ import annotations

import sys
import time

import rocketstream.heads.softmax as softmax
from rocketstream.cli.main import main

if __name__ == "__main__":
    pause = float(sys.argv[1])
    original = softmax.ChunkShuffleLoader.epoch

    def slow_epoch(self, epoch):
        for item in original(self, epoch):
            time.sleep(pause)
            yield item

    softmax.ChunkShuffleLoader.epoch = slow_epoch
    sys.exit(main(["train", *sys.argv[3:]]))
