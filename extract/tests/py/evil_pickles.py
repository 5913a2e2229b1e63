#!/usr/bin/env python3
"""Checkpoints that would run a command when unpickled by plain pickle.load:
`torch.load(weights_only=False)`'s risk, which fetch-resnet50.py must refuse.

    evil_pickles.py OUT_DIR MARKER

Writes OUT_DIR/evil-zip.pth (PyTorch's zip layout) and OUT_DIR/evil-legacy.pth
(the older format, the payload in the first pickle); unpickling either one
plainly would create the file MARKER."""
import os
import pickle
import sys
import zipfile


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def main():
    out, marker = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    body = pickle.dumps({"conv1.weight": Payload(marker)}, protocol=2)
    with zipfile.ZipFile(os.path.join(out, "evil-zip.pth"), "w") as z:
        z.writestr("evil/data.pkl", body)
        z.writestr("evil/byteorder", "little")
    with open(os.path.join(out, "evil-legacy.pth"), "wb") as f:
        f.write(pickle.dumps(Payload(marker), protocol=2))


if __name__ == "__main__":
    main()
